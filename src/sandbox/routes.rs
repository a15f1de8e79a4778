//! The route table: every path the sandbox answers, with its template (the
//! name stats and per-route faults use) and the API it belongs to (which
//! decides the error format and the rate-limit bucket).

/// The API a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/kota/...`
    Kota,
    /// `/noyo/...`
    Noyo,
    /// `/ic/...`
    Ic,
    /// `/_sandbox/...`: never faulted, never counted.
    Control,
}

impl Api {
    /// Name used in stats and rate-limit buckets.
    pub fn name(self) -> &'static str {
        match self {
            Api::Kota => "kota",
            Api::Noyo => "noyo",
            Api::Ic => "ic",
            Api::Control => "_sandbox",
        }
    }

    /// The API owning a path, from its first segment.
    pub fn of_path(path: &str) -> Option<Api> {
        let first = path.trim_start_matches('/').split('/').next()?;
        match first {
            "kota" => Some(Api::Kota),
            "noyo" => Some(Api::Noyo),
            "ic" => Some(Api::Ic),
            "_sandbox" => Some(Api::Control),
            _ => None,
        }
    }
}

/// One operation the sandbox implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    KotaCreateEmployer,
    KotaListEmployers,
    KotaGetEmployer,
    KotaUpdateEmployer,
    KotaOffboardEmployer,
    KotaCreateEmployee,
    KotaListEmployees,
    KotaGetEmployee,
    KotaUpdateEmployee,
    KotaOffboardEmployee,
    KotaCreateGroup,
    KotaListGroups,
    KotaGetGroup,
    KotaUpdateGroup,
    KotaAddGroupEmployee,
    KotaListGroupEmployees,
    KotaEligibilityCheck,
    NoyoToken,
    NoyoCreateConnection,
    NoyoListConnections,
    NoyoGetConnection,
    NoyoRetryConnection,
    NoyoCreateNestedConnection,
    NoyoListGroupConnections,
    IcCreateGroup,
    IcListGroups,
    CtlGetFaults,
    CtlPutFaults,
    CtlStats,
    CtlReset,
    CtlArchiveGroup,
    CtlRevokeNoyoTokens,
}

/// A route: method, template and operation.
#[derive(Debug)]
pub struct Route {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template; `{id}` segments capture a parameter.
    pub template: &'static str,
    /// What to run.
    pub op: Op,
    /// Owning API.
    pub api: Api,
}

impl Route {
    /// A write in the sense of stats and drop-after-commit.
    pub fn is_write(&self) -> bool {
        matches!(self.method, "POST" | "PUT" | "DELETE") && self.op != Op::NoyoToken
    }

    /// `"METHOD /template"`, the key of per-route faults.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

macro_rules! route {
    ($m:literal, $t:literal, $op:ident, $api:ident) => {
        Route {
            method: $m,
            template: $t,
            op: Op::$op,
            api: Api::$api,
        }
    };
}

/// Every route, in no particular order.
pub static ROUTES: &[Route] = &[
    route!("POST", "/kota/employers", KotaCreateEmployer, Kota),
    route!("GET", "/kota/employers", KotaListEmployers, Kota),
    route!("GET", "/kota/employers/{id}", KotaGetEmployer, Kota),
    route!("PUT", "/kota/employers/{id}", KotaUpdateEmployer, Kota),
    route!(
        "POST",
        "/kota/employers/{id}/offboard",
        KotaOffboardEmployer,
        Kota
    ),
    route!("POST", "/kota/employees", KotaCreateEmployee, Kota),
    route!("GET", "/kota/employees", KotaListEmployees, Kota),
    route!("GET", "/kota/employees/{id}", KotaGetEmployee, Kota),
    route!("PUT", "/kota/employees/{id}", KotaUpdateEmployee, Kota),
    route!(
        "POST",
        "/kota/employees/{id}/offboard",
        KotaOffboardEmployee,
        Kota
    ),
    route!("POST", "/kota/groups", KotaCreateGroup, Kota),
    route!("GET", "/kota/groups", KotaListGroups, Kota),
    route!("GET", "/kota/groups/{id}", KotaGetGroup, Kota),
    route!("PUT", "/kota/groups/{id}", KotaUpdateGroup, Kota),
    route!(
        "POST",
        "/kota/groups/{id}/employees",
        KotaAddGroupEmployee,
        Kota
    ),
    route!(
        "GET",
        "/kota/groups/{id}/employees",
        KotaListGroupEmployees,
        Kota
    ),
    route!(
        "POST",
        "/kota/groups/{id}/eligibility_check",
        KotaEligibilityCheck,
        Kota
    ),
    route!("POST", "/noyo/auth/public/token", NoyoToken, Noyo),
    route!(
        "POST",
        "/noyo/api/v1/group_connections",
        NoyoCreateConnection,
        Noyo
    ),
    route!(
        "GET",
        "/noyo/api/v1/group_connections",
        NoyoListConnections,
        Noyo
    ),
    route!(
        "GET",
        "/noyo/api/v1/group_connections/{id}",
        NoyoGetConnection,
        Noyo
    ),
    route!(
        "PUT",
        "/noyo/api/v1/group_connections/{id}/retry",
        NoyoRetryConnection,
        Noyo
    ),
    route!(
        "POST",
        "/noyo/api/v1/groups/{id}/group_connections",
        NoyoCreateNestedConnection,
        Noyo
    ),
    route!(
        "GET",
        "/noyo/api/v1/groups/{id}/group_connections",
        NoyoListGroupConnections,
        Noyo
    ),
    route!("POST", "/ic/groups", IcCreateGroup, Ic),
    route!("GET", "/ic/groups", IcListGroups, Ic),
    route!("GET", "/_sandbox/faults", CtlGetFaults, Control),
    route!("PUT", "/_sandbox/faults", CtlPutFaults, Control),
    route!("GET", "/_sandbox/stats", CtlStats, Control),
    route!("POST", "/_sandbox/reset", CtlReset, Control),
    route!(
        "POST",
        "/_sandbox/noyo/revoke_tokens",
        CtlRevokeNoyoTokens,
        Control
    ),
    route!(
        "POST",
        "/_sandbox/kota/groups/{id}/archive",
        CtlArchiveGroup,
        Control
    ),
];

/// What a method and path resolve to.
#[derive(Debug)]
pub enum Resolved {
    /// A route, with its captured `{id}` parameters in order.
    Found(&'static Route, Vec<String>),
    /// The path exists but not with this method.
    WrongMethod(Option<Api>),
    /// No such path.
    NotFound(Option<Api>),
}

/// Resolves a request line. A trailing slash is ignored.
pub fn resolve(method: &str, path: &str) -> Resolved {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let mut path_exists = false;
    for route in ROUTES {
        if let Some(params) = match_template(route.template, &segments) {
            if route.method == method {
                return Resolved::Found(route, params);
            }
            path_exists = true;
        }
    }
    let api = Api::of_path(path);
    if path_exists {
        Resolved::WrongMethod(api)
    } else {
        Resolved::NotFound(api)
    }
}

fn match_template(template: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = template.split('/').skip(1).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if *part == "{id}" {
            if seg.is_empty() {
                return None;
            }
            params.push((*seg).to_string());
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

/// Finds a route by its `"METHOD /template"` key.
pub fn by_key(key: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.key() == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_templates_and_params() {
        match resolve("GET", "/kota/employers/er_1/") {
            Resolved::Found(r, p) => {
                assert_eq!(r.op, Op::KotaGetEmployer);
                assert_eq!(p, vec!["er_1".to_string()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            resolve("DELETE", "/kota/employers"),
            Resolved::WrongMethod(Some(Api::Kota))
        ));
        assert!(matches!(
            resolve("GET", "/ic/nope"),
            Resolved::NotFound(Some(Api::Ic))
        ));
        assert!(by_key("POST /kota/employees").is_some());
        assert!(!by_key("POST /noyo/auth/public/token").is_some_and(Route::is_write));
    }
}
