//! Carrying out one operation: journal it, send it (looking before a
//! create whenever an earlier attempt may have landed), record the outcome.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::ids::Ids;
use crate::model::{Employee, EmployeeRef, Employer, EmployerRef, GroupName};
use crate::plan::fingerprint::{EMPLOYEE_SECTIONS, EMPLOYER_SECTIONS};
use crate::plan::{OpKind, Operation, Subject};
use crate::remote::ic::{Created, Ic};
use crate::remote::kota::Kota;
use crate::remote::noyo::Noyo;
use crate::remote::RemoteError;
use crate::state::{db, Effect, JournalStatus, Store};

/// The clients of the configured targets.
#[derive(Default)]
pub struct Clients {
    pub kota: Option<Kota>,
    pub noyo: Option<Noyo>,
    pub ic: Option<Ic>,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; `adopted` when an existing remote object was found and taken
    /// over instead of creating a new one.
    Done { adopted: bool },
    /// The eligibility pre-check said no: (code, message) pairs.
    Ineligible { reasons: Vec<(String, String)> },
    /// Failed; `uncertain` when the server may have acted anyway.
    Failed { error: String, uncertain: bool },
    /// Not attempted.
    Skipped { why: String },
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Done { .. } | Outcome::Ineligible { .. })
    }
}

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{0}")]
    Missing(String),
}

impl ExecError {
    fn uncertain(&self) -> bool {
        matches!(self, ExecError::Remote(e) if e.maybe_committed())
    }
}

/// What a successful send produced.
struct Done {
    effect: Effect,
    adopted: bool,
    ineligible: Option<Vec<(String, String)>>,
}

/// Everything an operation needs. Shared (in an `Arc`) by every task.
pub struct Executor {
    /// Clients of the configured targets.
    pub clients: Clients,
    /// The journal and state. Every operation writes to it before its first
    /// request and after its last.
    pub store: Store,
    pub run_id: i64,
    /// Remote ids from the state and from this run's creates.
    pub ids: Ids,
    pub employers: HashMap<EmployerRef, Employer>,
    pub employees: HashMap<EmployeeRef, Employee>,
    /// Keys of operations whose last attempt may have reached the server.
    pub uncertain: HashSet<String>,
    /// Seeds idempotency keys, so two state databases never share keys.
    pub idem_seed: u64,
    pub create_enrolment_intents: bool,
    pub today: NaiveDate,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The Invisible Collector name of an employer's group: IC names are unique
/// per account, and two employers may both have a "Health" group.
pub fn ic_group_name(er: &EmployerRef, g: &GroupName) -> String {
    format!("{g} ({er})")
}

fn already(e: &RemoteError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    matches!(e.status(), Some(400) | Some(409) | Some(422))
        && (text.contains("already") || e.status() == Some(409))
}

impl Executor {
    /// A key stable across retries and reruns of the same operation (its
    /// `key`) with the same content (its combined fingerprint `fp`).
    pub fn idempotency_key(&self, key: &str, fp: &str, extra: &str) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(self.idem_seed);
        h.update(key.as_bytes());
        h.update(&[0]);
        h.update(fp.as_bytes());
        h.update(&[0]);
        h.update(extra.as_bytes());
        format!("bsync-{:032x}", h.digest128())
    }

    fn employer(&self, r: &EmployerRef) -> Result<&Employer, ExecError> {
        self.employers
            .get(r)
            .ok_or_else(|| ExecError::Missing(format!("employer {r} is not in this run's exports")))
    }

    fn employee(&self, r: &EmployeeRef) -> Result<&Employee, ExecError> {
        self.employees
            .get(r)
            .ok_or_else(|| ExecError::Missing(format!("employee {r} is not in this run's exports")))
    }

    /// The employer and the connection of carrier `c` it declares.
    fn connection_spec(
        &self,
        er: &EmployerRef,
        c: &crate::model::CarrierId,
    ) -> Result<(&Employer, &crate::model::ConnectionSpec), ExecError> {
        let e = self.employer(er)?;
        let spec = e
            .connections
            .iter()
            .find(|x| x.carrier_id == *c)
            .ok_or_else(|| {
                ExecError::Missing(format!("carrier {c} is not in the export for {er}"))
            })?;
        Ok((e, spec))
    }

    fn kota(&self) -> Result<&Kota, ExecError> {
        self.clients
            .kota
            .as_ref()
            .ok_or_else(|| ExecError::Missing("Kota is not configured".into()))
    }

    fn noyo(&self) -> Result<&Noyo, ExecError> {
        self.clients
            .noyo
            .as_ref()
            .ok_or_else(|| ExecError::Missing("Noyo is not configured".into()))
    }

    fn kota_employer_id(&self, r: &EmployerRef) -> Result<String, ExecError> {
        self.ids
            .employer(r)
            .ok_or_else(|| ExecError::Missing(format!("employer {r} has no Kota id yet")))
    }

    fn kota_employee_id(&self, r: &EmployeeRef) -> Result<String, ExecError> {
        self.ids
            .employee(r)
            .ok_or_else(|| ExecError::Missing(format!("employee {r} has no Kota id yet")))
    }

    /// Journal, perform, record. Never panics; every path ends recorded
    /// (unless the task is aborted, which leaves the journal `in_flight`:
    /// exactly the "may have reached the server" the next run looks for).
    pub async fn run(&self, op: &Operation) -> Outcome {
        let key = op.key();
        let kind = op.kind.code();
        let fp = op.fp.combined();
        let idem = self.idempotency_key(&key, &fp, &self.extra(op));
        let run_id = self.run_id;
        let (k, i, f, t) = (key.clone(), idem.clone(), fp, now());
        if let Err(e) = self
            .store
            .write(move |tx| db::journal_begin(tx, &k, kind, &i, &f, run_id, &t))
            .await
        {
            return Outcome::Failed {
                error: format!("could not journal the operation: {e}"),
                uncertain: false,
            };
        }
        let uncertain = self.uncertain.contains(&key);
        let result = self.perform(op, &idem, uncertain).await;
        let (status, effect, error, outcome) = match result {
            Ok(done) => {
                let outcome = match done.ineligible {
                    Some(reasons) => Outcome::Ineligible { reasons },
                    None => Outcome::Done {
                        adopted: done.adopted,
                    },
                };
                (JournalStatus::Done, Some(done.effect), None, outcome)
            }
            Err(e) => {
                let unsure = e.uncertain();
                let text = match &e {
                    ExecError::Remote(r) => r.journal_text(),
                    ExecError::Missing(m) => m.clone(),
                };
                let status = if unsure {
                    JournalStatus::Unknown
                } else {
                    JournalStatus::Failed
                };
                (
                    status,
                    None,
                    Some(text.clone()),
                    Outcome::Failed {
                        error: text,
                        uncertain: unsure,
                    },
                )
            }
        };
        let t = now();
        let k = key.clone();
        let write = self
            .store
            .write(move |tx| {
                db::journal_finish(
                    tx,
                    &k,
                    kind,
                    status,
                    effect.as_ref(),
                    error.as_deref(),
                    run_id,
                    &t,
                )
            })
            .await;
        match write {
            Ok(()) => outcome,
            Err(e) => Outcome::Failed {
                error: format!("succeeded remotely but could not record it: {e}; the next run will find and adopt it"),
                uncertain: true,
            },
        }
    }

    /// Record that an operation was not attempted.
    pub async fn record_skip(&self, op: &Operation, why: &str) {
        let key = op.key();
        let kind = op.kind.code();
        let run_id = self.run_id;
        let why = why.to_owned();
        let t = now();
        let _ = self
            .store
            .write(move |tx| {
                db::journal_finish(
                    tx,
                    &key,
                    kind,
                    JournalStatus::Skipped,
                    None,
                    Some(&why),
                    run_id,
                    &t,
                )
            })
            .await;
    }

    /// Content besides the fingerprint that makes a request distinct.
    fn extra(&self, op: &Operation) -> String {
        match op.kind {
            OpKind::MembershipAdd => format!("enrol={}", self.create_enrolment_intents),
            OpKind::EmployeeOffboard => format!("on={}", self.offboard_date(op)),
            _ => String::new(),
        }
    }

    fn offboard_date(&self, op: &Operation) -> NaiveDate {
        op.subject
            .employee()
            .and_then(|r| self.employees.get(r))
            .and_then(|e| e.end_on)
            .unwrap_or(self.today)
    }

    async fn perform(
        &self,
        op: &Operation,
        idem: &str,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        match (&op.kind, &op.subject) {
            (OpKind::EmployerCreate, Subject::Employer(er)) => {
                self.employer_create(op, er, idem, uncertain).await
            }
            (OpKind::EmployerUpdate, Subject::Employer(er)) => {
                let e = self.employer(er)?;
                let id = self.kota_employer_id(er)?;
                self.kota()?.update_employer(&id, e, &op.changes()).await?;
                Ok(Done {
                    effect: Effect::Employer {
                        employer_ref: er.clone(),
                        kota_id: id,
                        fp: op.fp.clone(),
                    },
                    adopted: false,
                    ineligible: None,
                })
            }
            (OpKind::GroupCreate, Subject::Group(er, g)) => {
                self.group_create(er, g, uncertain).await
            }
            (OpKind::IcGroupCreate, Subject::Group(er, g)) => {
                let ic = self
                    .clients
                    .ic
                    .as_ref()
                    .ok_or_else(|| ExecError::Missing("IC is not configured".into()))?;
                let (group, adopted) = match ic.create_group(&ic_group_name(er, g)).await? {
                    Created::New(x) => (x, false),
                    Created::Adopted(x) => (x, true),
                };
                Ok(Done {
                    effect: Effect::IcGroup {
                        employer_ref: er.clone(),
                        name: g.clone(),
                        ic_id: group.id,
                    },
                    adopted,
                    ineligible: None,
                })
            }
            (OpKind::ConnectionCreate, Subject::Connection(er, c)) => {
                self.connection_create(op, er, c, uncertain).await
            }
            (OpKind::ConnectionRetry, Subject::Connection(er, c)) => {
                let (e, spec) = self.connection_spec(er, c)?;
                let id = self.ids.connection(er, c).ok_or_else(|| {
                    ExecError::Missing(format!("connection {er}|{c} has no Noyo id"))
                })?;
                let conn = self.noyo()?.retry(&id, e, spec).await?;
                let group = conn
                    .group_id
                    .clone()
                    .or_else(|| self.ids.noyo_group(er))
                    .unwrap_or_default();
                Ok(Done {
                    effect: Effect::Connection {
                        employer_ref: er.clone(),
                        carrier_id: *c,
                        noyo_id: id,
                        noyo_group_id: group,
                        fp: op.fp.clone(),
                        status: conn.status,
                    },
                    adopted: false,
                    ineligible: None,
                })
            }
            (OpKind::EmployeeCreate, Subject::Employee(er, ee)) => {
                self.employee_create(op, er, ee, idem, uncertain).await
            }
            (OpKind::EmployeeUpdate, Subject::Employee(er, ee)) => {
                let e = self.employee(ee)?;
                let id = self.kota_employee_id(ee)?;
                self.kota()?.update_employee(&id, e, &op.changes()).await?;
                Ok(Done {
                    effect: Effect::Employee {
                        employee_ref: ee.clone(),
                        employer_ref: er.clone(),
                        kota_id: id,
                        fp: op.fp.clone(),
                    },
                    adopted: false,
                    ineligible: None,
                })
            }
            (OpKind::EmployeeOffboard, Subject::Employee(_, ee)) => {
                let id = self.kota_employee_id(ee)?;
                let on = self.offboard_date(op);
                let reason = if self.employees.get(ee).is_some_and(|e| e.end_on.is_some()) {
                    "Left employment (leaving date from payroll)"
                } else {
                    "No longer in the payroll export"
                };
                let adopted = match self.kota()?.offboard_employee(&id, on, reason, idem).await {
                    Ok(_) => false,
                    Err(e) if already(&e) => true,
                    Err(e) => return Err(e.into()),
                };
                Ok(Done {
                    effect: Effect::EmployeeOffboarded {
                        employee_ref: ee.clone(),
                    },
                    adopted,
                    ineligible: None,
                })
            }
            (OpKind::MembershipAdd, Subject::Membership(er, ee, g)) => {
                self.membership_add(er, ee, g, idem, uncertain).await
            }
            _ => Err(ExecError::Missing(format!(
                "operation {} has a subject of the wrong shape",
                op.key()
            ))),
        }
    }

    async fn employer_create(
        &self,
        op: &Operation,
        er: &EmployerRef,
        idem: &str,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        let e = self.employer(er)?;
        let kota = self.kota()?;
        let (id, adopted) = match if uncertain {
            kota.find_employer(er.as_str()).await?
        } else {
            None
        } {
            Some(found) => {
                // The earlier attempt may have sent older data: bring it up to date.
                kota.update_employer(&found.id, e, &EMPLOYER_SECTIONS)
                    .await?;
                (found.id, true)
            }
            None => (kota.create_employer(e, idem).await?.id, false),
        };
        self.ids.set_employer(er, &id);
        Ok(Done {
            effect: Effect::Employer {
                employer_ref: er.clone(),
                kota_id: id,
                fp: op.fp.clone(),
            },
            adopted,
            ineligible: None,
        })
    }

    async fn group_create(
        &self,
        er: &EmployerRef,
        g: &GroupName,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        let e = self.employer(er)?;
        let spec = e.group(g).ok_or_else(|| {
            ExecError::Missing(format!("group {g} is not in the export for {er}"))
        })?;
        let kota = self.kota()?;
        let employer_id = self.kota_employer_id(er)?;
        let (id, adopted) = create_or_adopt!(uncertain,
            find: kota.find_group(&employer_id, g.as_str()).await?.map(|o| o.id),
            create: kota.create_group(&employer_id, spec).await.map(|o| o.id)
        )?;
        self.ids.set_kota_group(er, g, &id);
        Ok(Done {
            effect: Effect::KotaGroup {
                employer_ref: er.clone(),
                name: g.clone(),
                kota_id: id,
            },
            adopted,
            ineligible: None,
        })
    }

    async fn connection_create(
        &self,
        op: &Operation,
        er: &EmployerRef,
        c: &crate::model::CarrierId,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        let (e, spec) = self.connection_spec(er, c)?;
        let noyo = self.noyo()?;
        let group = self.ids.noyo_group(er);
        let (conn, adopted) = create_or_adopt!(uncertain,
            find: noyo.find(spec).await?,
            create: match &group {
                Some(g) => noyo.create_in_group(g, e, spec).await,
                None => noyo.create_with_group(e, spec).await,
            }
        )?;
        let group_id = conn
            .group_id
            .clone()
            .or(group)
            .ok_or_else(|| ExecError::Missing("Noyo answered without a group_id".into()))?;
        self.ids.set_noyo_group(er, &group_id);
        self.ids.set_connection(er, c, &conn.id);
        Ok(Done {
            effect: Effect::Connection {
                employer_ref: er.clone(),
                carrier_id: *c,
                noyo_id: conn.id,
                noyo_group_id: group_id,
                fp: op.fp.clone(),
                status: conn.status,
            },
            adopted,
            ineligible: None,
        })
    }

    async fn employee_create(
        &self,
        op: &Operation,
        er: &EmployerRef,
        ee: &EmployeeRef,
        idem: &str,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        let e = self.employee(ee)?;
        let kota = self.kota()?;
        let employer_id = self.kota_employer_id(er)?;
        let found = if uncertain {
            kota.find_employee(&employer_id, ee.as_str()).await?
        } else {
            None
        };
        let (id, adopted) = match found {
            Some(o) => {
                // Bring what an earlier attempt sent up to date.
                kota.update_employee(&o.id, e, &EMPLOYEE_SECTIONS).await?;
                (o.id, true)
            }
            None => (kota.create_employee(&employer_id, e, idem).await?.id, false),
        };
        self.ids.set_employee(ee, &id);
        Ok(Done {
            effect: Effect::Employee {
                employee_ref: ee.clone(),
                employer_ref: er.clone(),
                kota_id: id,
                fp: op.fp.clone(),
            },
            adopted,
            ineligible: None,
        })
    }

    async fn membership_add(
        &self,
        er: &EmployerRef,
        ee: &EmployeeRef,
        g: &GroupName,
        idem: &str,
        uncertain: bool,
    ) -> Result<Done, ExecError> {
        let kota = self.kota()?;
        let group_id = self
            .ids
            .kota_group(er, g)
            .ok_or_else(|| ExecError::Missing(format!("group {er}|{g} has no Kota id yet")))?;
        let employee_id = self.kota_employee_id(ee)?;
        let effect = |ineligible: Option<String>| Effect::Membership {
            employee_ref: ee.clone(),
            group: g.clone(),
            ineligible,
        };
        if uncertain
            && kota
                .find_membership(&group_id, &employee_id)
                .await?
                .is_some()
        {
            return Ok(Done {
                effect: effect(None),
                adopted: true,
                ineligible: None,
            });
        }
        let verdict = kota.check_eligibility(&group_id, &employee_id).await?;
        if !verdict.eligible() {
            let reasons: Vec<(String, String)> = verdict
                .reasons
                .into_iter()
                .map(|r| (r.code, r.message))
                .collect();
            let codes = reasons
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(",");
            return Ok(Done {
                effect: effect(Some(codes)),
                adopted: false,
                ineligible: Some(reasons),
            });
        }
        let adopted = match kota
            .add_to_group(&group_id, &employee_id, self.create_enrolment_intents, idem)
            .await
        {
            Ok(_) => false,
            Err(e) if already(&e) => true,
            Err(e) => return Err(e.into()),
        };
        Ok(Done {
            effect: effect(None),
            adopted,
            ineligible: None,
        })
    }
}

/// Create an object the server cannot deduplicate: look first when an
/// earlier attempt may have landed, and after every attempt whose answer
/// was lost; adopt what is found. (A macro, not a function over async
/// closures: those futures are not provably `Send` for spawned tasks.)
macro_rules! create_or_adopt {
    ($uncertain:expr, find: $find:expr, create: $create:expr) => {{
        let mut uncertain: bool = $uncertain;
        let mut rounds: u64 = 0;
        loop {
            rounds += 1;
            if uncertain {
                if let Some(found) = $find {
                    break Ok::<_, RemoteError>((found, true));
                }
            }
            match $create {
                Ok(x) => break Ok((x, false)),
                Err(e) if e.maybe_committed() && e.retryable() && rounds < 6 => {
                    uncertain = true;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * rounds)).await;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}
use create_or_adopt;
