//! Which remote accounts a run talks to, from flags and the environment,
//! and the check that a state database is only ever used with one set.

use std::collections::BTreeMap;

use crate::plan::Target;

/// Kota's account: base URL and API key.
#[derive(Clone)]
pub struct KotaTarget {
    pub url: String,
    pub api_key: String,
}

/// Noyo's account: API base, token endpoint, client credentials.
#[derive(Clone)]
pub struct NoyoTarget {
    pub url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Invisible Collector's account.
#[derive(Clone)]
pub struct IcTarget {
    pub url: String,
    pub token: String,
}

/// The configured targets; a `None` is reported as "target not configured".
#[derive(Clone, Default)]
pub struct Targets {
    pub kota: Option<KotaTarget>,
    pub noyo: Option<NoyoTarget>,
    pub ic: Option<IcTarget>,
    /// Set for `--sandbox` runs: the identity recorded in the state is the
    /// sandbox's data file, not its (changing) port.
    pub sandbox_identity: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{var} is set but {missing} is not: set both to sync with {target}, or neither to skip it"
    )]
    Incomplete {
        target: &'static str,
        var: &'static str,
        missing: &'static str,
    },
    #[error("{url} is not an http(s) URL")]
    BadUrl { url: String },
    #[error("{url} uses plain http to a host that is not loopback; credentials would cross the network unencrypted. Use https, or pass --allow-insecure-http if this is a test network")]
    InsecureHttp { url: String },
    #[error("this state database was synced against {target} at {recorded}; this run points it at {now}. Remote ids from one account mean nothing in another: use a separate --state file per account")]
    Mismatch {
        target: &'static str,
        recorded: String,
        now: String,
    },
}

/// Values as read from flags/environment, before checking.
#[derive(Default, Clone)]
pub struct RawTargets {
    pub kota_url: Option<String>,
    pub kota_key: Option<String>,
    pub noyo_url: Option<String>,
    pub noyo_token_url: Option<String>,
    pub noyo_client_id: Option<String>,
    pub noyo_client_secret: Option<String>,
    pub ic_url: Option<String>,
    pub ic_token: Option<String>,
}

/// Every environment variable that configures a target (the ones
/// [`RawTargets::from_env`] reads): a child process started for a test or a
/// benchmark clears them so that no stray target leaks in.
pub const ENV_VARS: [&str; 8] = [
    "KOTA_API_URL",
    "KOTA_API_KEY",
    "NOYO_API_URL",
    "NOYO_TOKEN_URL",
    "NOYO_CLIENT_ID",
    "NOYO_CLIENT_SECRET",
    "IC_API_URL",
    "IC_API_TOKEN",
];

impl RawTargets {
    /// Read the documented environment variables.
    pub fn from_env() -> RawTargets {
        let v = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
        RawTargets {
            kota_url: v("KOTA_API_URL"),
            kota_key: v("KOTA_API_KEY"),
            noyo_url: v("NOYO_API_URL"),
            noyo_token_url: v("NOYO_TOKEN_URL"),
            noyo_client_id: v("NOYO_CLIENT_ID"),
            noyo_client_secret: v("NOYO_CLIENT_SECRET"),
            ic_url: v("IC_API_URL"),
            ic_token: v("IC_API_TOKEN"),
        }
    }
}

fn check_url(url: &str, allow_insecure: bool) -> Result<(), TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::BadUrl { url: url.into() })?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback || allow_insecure {
                Ok(())
            } else {
                Err(TargetError::InsecureHttp { url: url.into() })
            }
        }
        _ => Err(TargetError::BadUrl { url: url.into() }),
    }
}

fn pair(
    target: &'static str,
    a: (&'static str, &Option<String>),
    b: (&'static str, &Option<String>),
) -> Result<Option<(String, String)>, TargetError> {
    match (a.1, b.1) {
        (Some(x), Some(y)) => Ok(Some((x.clone(), y.clone()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TargetError::Incomplete {
            target,
            var: a.0,
            missing: b.0,
        }),
        (None, Some(_)) => Err(TargetError::Incomplete {
            target,
            var: b.0,
            missing: a.0,
        }),
    }
}

impl Targets {
    /// Check and assemble; `only` narrows to the `--targets` list.
    pub fn from_raw(
        raw: &RawTargets,
        only: &[Target],
        allow_insecure: bool,
    ) -> Result<Targets, TargetError> {
        let wanted = |t: Target| only.is_empty() || only.contains(&t);
        let mut t = Targets::default();
        if wanted(Target::Kota) {
            if let Some((url, api_key)) = pair(
                "Kota",
                ("KOTA_API_URL", &raw.kota_url),
                ("KOTA_API_KEY", &raw.kota_key),
            )? {
                check_url(&url, allow_insecure)?;
                t.kota = Some(KotaTarget { url, api_key });
            }
        }
        if wanted(Target::Noyo) {
            if let Some((url, client_id)) = pair(
                "Noyo",
                ("NOYO_API_URL", &raw.noyo_url),
                ("NOYO_CLIENT_ID", &raw.noyo_client_id),
            )? {
                let secret = raw
                    .noyo_client_secret
                    .clone()
                    .ok_or(TargetError::Incomplete {
                        target: "Noyo",
                        var: "NOYO_CLIENT_ID",
                        missing: "NOYO_CLIENT_SECRET",
                    })?;
                let token_url = raw
                    .noyo_token_url
                    .clone()
                    .unwrap_or_else(|| crate::remote::http::join(&url, "/auth/public/token"));
                check_url(&url, allow_insecure)?;
                check_url(&token_url, allow_insecure)?;
                t.noyo = Some(NoyoTarget {
                    url,
                    token_url,
                    client_id,
                    client_secret: secret,
                });
            }
        }
        if wanted(Target::Ic) {
            if let Some((url, token)) = pair(
                "Invisible Collector",
                ("IC_API_URL", &raw.ic_url),
                ("IC_API_TOKEN", &raw.ic_token),
            )? {
                check_url(&url, allow_insecure)?;
                t.ic = Some(IcTarget { url, token });
            }
        }
        Ok(t)
    }

    pub fn configured(&self, target: Target) -> bool {
        match target {
            Target::Kota => self.kota.is_some(),
            Target::Noyo => self.noyo.is_some(),
            Target::Ic => self.ic.is_some(),
        }
    }

    /// What the state records per target: the base URL and a fingerprint of
    /// the credential (never the credential).
    pub fn identities(&self) -> BTreeMap<&'static str, String> {
        let fp = |secret: &str| {
            let h = blake3::hash(format!("benefits-sync credential\0{secret}").as_bytes());
            h.to_hex()[..12].to_owned()
        };
        let mut m = BTreeMap::new();
        let id = |url: &str, cred: String| match &self.sandbox_identity {
            Some(s) => format!("{s} (credential {cred})"),
            None => format!("{url} (credential {cred})"),
        };
        if let Some(k) = &self.kota {
            m.insert("kota", id(&k.url, fp(&k.api_key)));
        }
        if let Some(n) = &self.noyo {
            m.insert(
                "noyo",
                id(&n.url, fp(&format!("{}:{}", n.client_id, n.client_secret))),
            );
        }
        if let Some(i) = &self.ic {
            m.insert("ic", id(&i.url, fp(&i.token)));
        }
        m
    }

    /// Compare with what the state recorded; returns what to record now.
    pub fn check_against(&self, recorded: Option<&str>) -> Result<String, TargetError> {
        let mut merged: BTreeMap<String, String> = recorded
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default();
        for (target, now) in self.identities() {
            if let Some(before) = merged.get(target) {
                if *before != now {
                    return Err(TargetError::Mismatch {
                        target,
                        recorded: before.clone(),
                        now,
                    });
                }
            }
            merged.insert(target.to_owned(), now);
        }
        Ok(serde_json::to_string(&merged).expect("a map of strings serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(check_url("http://127.0.0.1:8080/kota", false).is_ok());
        assert!(check_url("http://localhost/kota", false).is_ok());
        assert!(check_url("http://[::1]:9/kota", false).is_ok());
        assert!(matches!(
            check_url("http://kota.example.com", false),
            Err(TargetError::InsecureHttp { .. })
        ));
        assert!(check_url("http://kota.example.com", true).is_ok());
        assert!(check_url("https://api.kota.io", false).is_ok());
        assert!(matches!(
            check_url("ftp://x", false),
            Err(TargetError::BadUrl { .. })
        ));
    }

    #[test]
    fn a_state_refuses_another_account_and_never_records_the_secret() {
        let raw = RawTargets {
            kota_url: Some("https://api.kota.io".into()),
            kota_key: Some("pk_live_secret123".into()),
            ..RawTargets::default()
        };
        let t = Targets::from_raw(&raw, &[], false).unwrap();
        let rec = t.check_against(None).unwrap();
        assert!(!rec.contains("pk_live_secret123"));
        assert!(t.check_against(Some(&rec)).is_ok());
        let other = Targets::from_raw(
            &RawTargets {
                kota_key: Some("pk_live_other".into()),
                ..raw.clone()
            },
            &[],
            false,
        )
        .unwrap();
        assert!(matches!(
            other.check_against(Some(&rec)),
            Err(TargetError::Mismatch { .. })
        ));
    }

    #[test]
    fn half_configured_target_is_an_error() {
        let raw = RawTargets {
            kota_url: Some("https://api.kota.io".into()),
            ..RawTargets::default()
        };
        assert!(matches!(
            Targets::from_raw(&raw, &[], false),
            Err(TargetError::Incomplete { .. })
        ));
        // ... unless --targets leaves it out.
        assert!(Targets::from_raw(&raw, &[Target::Noyo], false)
            .unwrap()
            .kota
            .is_none());
    }
}
