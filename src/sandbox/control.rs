//! The control surface under `/_sandbox`: faults, stats, reset, and the
//! state changes the vendor APIs offer no endpoint for (archiving a Kota
//! group, revoking Noyo tokens). Never faulted, never counted in stats, no
//! auth.

use serde_json::json;

use super::faults::FaultPlan;
use super::http::{noyo_error, Call, Reply};
use super::routes::{self, Api, Op};
use super::server::{lock, App};
use super::stats::Stats;

/// Handles a control request.
pub fn handle(app: &App, call: &Call) -> Reply {
    match call.route.op {
        Op::CtlGetFaults => Reply::json(200, lock(&app.faults).plan()),
        Op::CtlPutFaults => put_faults(app, call),
        Op::CtlStats => stats(app),
        Op::CtlReset => {
            lock(&app.world).clear();
            *lock(&app.stats) = Stats::default();
            lock(&app.tokens).clear();
            lock(&app.faults).set_plan(FaultPlan {
                global: app.startup_faults.clone(),
                routes: Default::default(),
            });
            Reply::json(200, &json!({"reset": true}))
        }
        Op::CtlRevokeNoyoTokens => {
            // As Noyo does when a client's credentials are rotated or its
            // token store is lost: every token issued so far answers 401
            // from now on, and clients must fetch a new one.
            let mut tokens = lock(&app.tokens);
            let revoked = tokens.len();
            tokens.clear();
            Reply::json(200, &json!({"revoked": revoked}))
        }
        Op::CtlArchiveGroup => {
            let mut world = lock(&app.world);
            let w = &mut *world;
            let Some(old) = w.groups.get(call.id()) else {
                return noyo_error(404, "Group not found.");
            };
            let mut g = old.clone();
            g.status = "archived".into();
            let reply = Reply::json(200, &g);
            w.groups.put(&mut w.persist, &g.id.clone(), g);
            reply
        }
        _ => noyo_error(404, "No such route."),
    }
}

/// `PUT /_sandbox/faults`: replaces the whole plan. Route keys must name a
/// vendor route (`"POST /kota/employees"`).
fn put_faults(app: &App, call: &Call) -> Reply {
    let plan: FaultPlan = match serde_json::from_slice(call.body) {
        Ok(p) => p,
        Err(e) => return noyo_error(400, format!("Invalid fault plan: {e}")),
    };
    if let Err(e) = plan.global.check() {
        return noyo_error(400, format!("global: {e}"));
    }
    for (key, cfg) in &plan.routes {
        match routes::by_key(key) {
            Some(r) if r.api != Api::Control => {}
            _ => {
                return noyo_error(
                    400,
                    format!("routes: {key:?} is not a vendor route (\"METHOD /template\")"),
                )
            }
        }
        if let Err(e) = cfg.check() {
            return noyo_error(400, format!("routes.{key}: {e}"));
        }
    }
    lock(&app.faults).set_plan(plan.clone());
    Reply::json(200, &plan)
}

/// `GET /_sandbox/stats`.
fn stats(app: &App) -> Reply {
    let (objects, duplicates) = {
        let w = lock(&app.world);
        (w.object_counts(), w.duplicate_counts())
    };
    let s = lock(&app.stats);
    Reply::json(
        200,
        &json!({
            "objects": objects,
            "duplicates": duplicates,
            "requests": s.request_counts(),
            "write_requests": s.write_requests,
            "faults": s.faults,
        }),
    )
}
