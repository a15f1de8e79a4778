//! `benefits-sync unlock`: release a lock left by a run that died.

use super::{describe_holder, hostname, open_store, pid_alive, state_path, AppError, EXIT_OK};
use crate::cli::UnlockArgs;
use crate::state::db;

pub fn run(args: UnlockArgs) -> Result<u8, AppError> {
    let path = state_path(&args.state, args.sandbox);
    let store = open_store(&path)?;
    let holder = store.call(|c| db::lock_holder(c))?;
    let Some(h) = holder else {
        println!("{} is not locked", path.display());
        store.close();
        return Ok(EXIT_OK);
    };
    let alive_here = h.host == hostname() && pid_alive(h.pid);
    let other_host = h.host != hostname();
    if (alive_here || other_host) && !args.force {
        store.close();
        return Err(AppError::Locked(format!(
            "{}; not releasing it{}",
            describe_holder(&path, &h),
            if other_host {
                " (it was taken on another host: pass --force once you know that run is gone)"
            } else {
                ""
            }
        )));
    }
    let now = chrono::Utc::now().to_rfc3339();
    store.call(move |c| db::break_lock(c, &now))?;
    store.close();
    println!(
        "released the lock of run {} (pid {} on {}, since {}); its unfinished operations will be looked up before anything is created again",
        h.run_id, h.pid, h.host, h.started
    );
    Ok(EXIT_OK)
}
