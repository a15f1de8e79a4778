//! Fault injection: what to do to a vendor request before (and after) it is
//! handled. Every random choice comes from one seeded generator, so a run
//! with the same seed and the same request order injects the same faults.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::routes::Route;

/// Faults for every vendor route (global) or one route.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Fixed delay before handling, in milliseconds.
    pub latency_ms: u64,
    /// Extra random delay, uniform in `0..=latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// Probability (0..=1) of answering 500 or 503 without handling.
    pub error_rate: f64,
    /// Probability (0..=1) that a successful write is committed and then its
    /// connection closed without any response byte.
    pub drop_rate: f64,
    /// Requests per second allowed per API (per route for a route config);
    /// beyond it, 429 with `Retry-After`.
    pub rate_limit: Option<u32>,
    /// Seed of the fault generator (only the global seed is used).
    pub seed: u64,
}

impl FaultConfig {
    /// Rates must be probabilities.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if self.rate_limit == Some(0) {
            return Err("rate_limit must be at least 1 (omit it for no limit)".into());
        }
        Ok(())
    }
}

/// The body of `PUT /_sandbox/faults`: a global config and per-route ones
/// keyed `"METHOD /template"` (`"POST /kota/employees"`). A route config
/// replaces the global one for that route entirely.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Applies to routes without their own config.
    pub global: FaultConfig,
    /// Per-route configs.
    pub routes: BTreeMap<String, FaultConfig>,
}

/// What to do with a request.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Answer 429 with this `Retry-After` (seconds).
    RateLimited(u64),
    /// Answer this 5xx without handling.
    Fail(u16),
    /// Handle it.
    Proceed {
        /// Wait this long first.
        latency: Duration,
        /// If the handler succeeds on a write, drop the connection.
        drop_after_commit: bool,
    },
}

/// Current plan plus the generator and rate-limit windows.
pub struct Faults {
    /// The plan in force.
    plan: FaultPlan,
    /// Seeded generator for every random choice.
    rng: SmallRng,
    /// Rate-limit bucket -> (window second, requests in it).
    windows: HashMap<String, (u64, u32)>,
    /// Origin of the one-second windows.
    epoch: Instant,
}

impl Faults {
    /// Starts with `global` for every route.
    pub fn new(global: FaultConfig) -> Faults {
        let rng = SmallRng::seed_from_u64(global.seed);
        Faults {
            plan: FaultPlan {
                global,
                routes: BTreeMap::new(),
            },
            rng,
            windows: HashMap::new(),
            epoch: Instant::now(),
        }
    }

    /// The plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Replaces the plan and reseeds from its global seed, so a test that
    /// sets a plan replays the same faults.
    pub fn set_plan(&mut self, plan: FaultPlan) {
        self.rng = SmallRng::seed_from_u64(plan.global.seed);
        self.windows.clear();
        self.plan = plan;
    }

    /// Decides the fate of a request to `route` arriving now.
    pub fn decide(&mut self, route: &Route) -> Decision {
        let key = route.key();
        let (cfg, bucket) = match self.plan.routes.get(&key) {
            Some(c) => (c.clone(), format!("route:{key}")),
            None => (
                self.plan.global.clone(),
                format!("api:{}", route.api.name()),
            ),
        };
        if let Some(limit) = cfg.rate_limit {
            let now = self.epoch.elapsed();
            let second = now.as_secs();
            let window = self.windows.entry(bucket).or_insert((second, 0));
            if window.0 != second {
                *window = (second, 0);
            }
            if window.1 >= limit {
                // The window ends within a second; HTTP wants whole seconds.
                return Decision::RateLimited(1);
            }
            window.1 += 1;
        }
        if cfg.error_rate > 0.0 && self.rng.gen_bool(cfg.error_rate) {
            let status = if self.rng.gen_bool(0.5) { 503 } else { 500 };
            return Decision::Fail(status);
        }
        let jitter = if cfg.latency_jitter_ms > 0 {
            self.rng.gen_range(0..=cfg.latency_jitter_ms)
        } else {
            0
        };
        let drop_after_commit =
            route.is_write() && cfg.drop_rate > 0.0 && self.rng.gen_bool(cfg.drop_rate);
        Decision::Proceed {
            latency: Duration::from_millis(cfg.latency_ms.saturating_add(jitter)),
            drop_after_commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::routes::by_key;

    fn route(key: &str) -> &'static Route {
        by_key(key).expect("known route")
    }

    #[test]
    fn same_seed_same_faults() {
        let cfg = FaultConfig {
            error_rate: 0.3,
            drop_rate: 0.3,
            latency_jitter_ms: 50,
            seed: 7,
            ..FaultConfig::default()
        };
        let r = route("POST /kota/employees");
        let mut a = Faults::new(cfg.clone());
        let mut b = Faults::new(cfg);
        let da: Vec<Decision> = (0..50).map(|_| a.decide(r)).collect();
        let db: Vec<Decision> = (0..50).map(|_| b.decide(r)).collect();
        assert_eq!(da, db);
        assert!(da.iter().any(|d| matches!(d, Decision::Fail(_))));
    }

    #[test]
    fn rate_limit_per_api_and_route_override() {
        let mut f = Faults::new(FaultConfig {
            rate_limit: Some(2),
            ..FaultConfig::default()
        });
        let kota = route("GET /kota/employers");
        let ic = route("GET /ic/groups");
        let mut limited = 0;
        for _ in 0..5 {
            if matches!(f.decide(kota), Decision::RateLimited(_)) {
                limited += 1;
            }
        }
        // At most two per window; a window boundary may let two more in.
        assert!(limited >= 1, "limited {limited}");
        assert!(matches!(f.decide(ic), Decision::Proceed { .. }));

        let mut plan = FaultPlan::default();
        plan.routes
            .insert("GET /kota/employers".into(), FaultConfig::default());
        f.set_plan(plan);
        for _ in 0..10 {
            assert!(matches!(f.decide(kota), Decision::Proceed { .. }));
        }
    }

    #[test]
    fn reads_never_drop() {
        let mut f = Faults::new(FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        });
        let d = f.decide(route("GET /kota/employers"));
        assert!(matches!(
            d,
            Decision::Proceed {
                drop_after_commit: false,
                ..
            }
        ));
        let d = f.decide(route("POST /noyo/auth/public/token"));
        assert!(matches!(
            d,
            Decision::Proceed {
                drop_after_commit: false,
                ..
            }
        ));
    }
}
