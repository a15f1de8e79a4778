fn main() {
    eprintln!("benefits-sync: commands are being built; see README.md");
    std::process::exit(2);
}
