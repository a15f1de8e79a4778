//! Kota request schemas, transcribed from the OpenAPI spec's
//! `components.schemas` (every one is `additionalProperties: false`), plus
//! the rules the spec states only in prose ("Must not be empty", "Required
//! for United States and Canada", E.164 phones, metadata limits, date
//! ranges).

use serde_json::Value;

use crate::sandbox::validate::{parse_date, push, Errors, Field, Schema, Ty};

/// The spec's CountryCode enum (lower case; upper case is rejected).
pub static COUNTRY_CODES: &[&str] = &[
    "af", "ax", "al", "dz", "as", "ad", "ao", "ai", "aq", "ag", "ar", "am", "aw", "au", "at", "az",
    "bs", "bh", "bd", "bb", "by", "be", "bz", "bj", "bm", "bt", "bo", "bq", "ba", "bw", "bv", "br",
    "io", "bn", "bg", "bf", "bi", "cv", "kh", "cm", "ca", "ky", "cf", "td", "cl", "cn", "cx", "cc",
    "co", "km", "cg", "cd", "ck", "cr", "ci", "hr", "cu", "cw", "cy", "cz", "dk", "dj", "dm", "do",
    "ec", "eg", "sv", "gq", "er", "ee", "sz", "et", "fk", "fo", "fj", "fi", "fr", "gf", "pf", "tf",
    "ga", "gm", "ge", "de", "gh", "gi", "gr", "gl", "gd", "gp", "gu", "gt", "gg", "gn", "gw", "gy",
    "ht", "hm", "va", "hn", "hk", "hu", "is", "in", "id", "ir", "iq", "ie", "im", "il", "it", "jm",
    "jp", "je", "jo", "kz", "ke", "ki", "kp", "kr", "xk", "kw", "kg", "la", "lv", "lb", "ls", "lr",
    "ly", "li", "lt", "lu", "mo", "mg", "mw", "my", "mv", "ml", "mt", "mh", "mq", "mr", "mu", "yt",
    "mx", "fm", "md", "mc", "mn", "me", "ms", "ma", "mz", "mm", "na", "nr", "np", "nl", "nc", "nz",
    "ni", "ne", "ng", "nu", "nf", "mk", "mp", "no", "om", "pk", "pw", "ps", "pa", "pg", "py", "pe",
    "ph", "pn", "pl", "pt", "pr", "qa", "re", "ro", "ru", "rw", "bl", "sh", "kn", "lc", "mf", "pm",
    "vc", "ws", "sm", "st", "sa", "sn", "rs", "sc", "sl", "sg", "sx", "sk", "si", "sb", "so", "za",
    "gs", "ss", "es", "lk", "sd", "sr", "sj", "se", "ch", "sy", "tw", "tj", "tz", "th", "tl", "tg",
    "tk", "to", "tt", "tn", "tr", "tm", "tc", "tv", "ug", "ua", "ae", "gb", "um", "us", "uy", "uz",
    "vu", "ve", "vn", "vg", "vi", "wf", "eh", "ye", "zm", "zw",
];

/// SexAtBirth.
pub static SEX_AT_BIRTH: &[&str] = &["male", "female"];
/// EmployerStatus / EmployeeStatus.
pub static PERSON_STATUSES: &[&str] =
    &["pending", "active", "offboarding", "inactive", "restricted"];
/// GroupStatus.
pub static GROUP_STATUSES: &[&str] = &["pending", "ready", "archived"];

/// AddressModel.
pub static ADDRESS: Schema = Schema {
    fields: &[
        Field::req("line1", Ty::NonEmpty),
        Field::opt("line2", Ty::Str),
        Field::opt("line3", Ty::Str),
        Field::req("city", Ty::NonEmpty),
        Field::opt("state", Ty::Str),
        Field::req("postal_code", Ty::NonEmpty),
        Field::req("country_code", Ty::Enum(COUNTRY_CODES)),
    ],
};

/// AddressModelWithoutCountry.
pub static ADDRESS_WITHOUT_COUNTRY: Schema = Schema {
    fields: &[
        Field::req("line1", Ty::NonEmpty),
        Field::opt("line2", Ty::Str),
        Field::opt("line3", Ty::Str),
        Field::req("city", Ty::NonEmpty),
        Field::opt("state", Ty::Str),
        Field::req("postal_code", Ty::NonEmpty),
    ],
};

/// ContactModel.
pub static CONTACT: Schema = Schema {
    fields: &[
        Field::req("name", Ty::NonEmpty),
        Field::req("email", Ty::NonEmpty),
    ],
};

/// CreateEmployerRequest.
pub static CREATE_EMPLOYER: Schema = Schema {
    fields: &[
        Field::req("legal_name", Ty::NonEmpty),
        Field::opt("registration_number", Ty::Str),
        Field::req("legal_address", Ty::Object(&ADDRESS)),
        Field::req("contact", Ty::Object(&CONTACT)),
        Field::opt("earliest_benefits_start_date", Ty::Date),
        Field::opt("metadata", Ty::StrMap),
    ],
};

/// UpdateEmployerRequest.
pub static UPDATE_EMPLOYER: Schema = Schema {
    fields: &[
        Field::opt("legal_name", Ty::NonEmpty),
        Field::opt("registration_number", Ty::Str),
        Field::opt("legal_address", Ty::Object(&ADDRESS_WITHOUT_COUNTRY)),
        Field::opt("contact", Ty::Object(&CONTACT)),
        Field::opt("earliest_benefits_start_date", Ty::Date),
        Field::opt("metadata", Ty::StrMap),
    ],
};

/// CreateEmployeeBankAccount.
pub static BANK_ACCOUNT: Schema = Schema {
    fields: &[Field::req("account_number", Ty::NonEmpty)],
};

/// CreateEmployeeRequest.
pub static CREATE_EMPLOYEE: Schema = Schema {
    fields: &[
        Field::req("employer_id", Ty::Prefixed("er_")),
        Field::opt("external_customer_id", Ty::Str),
        Field::req("first_name", Ty::NonEmpty),
        Field::req("last_name", Ty::NonEmpty),
        Field::req("date_of_birth", Ty::Date),
        Field::req("sex_at_birth", Ty::Enum(SEX_AT_BIRTH)),
        Field::req("home_address", Ty::Object(&ADDRESS)),
        Field::opt("nationality", Ty::Enum(COUNTRY_CODES)),
        Field::req("national_tax_id", Ty::NonEmpty),
        Field::req("start_on", Ty::Date),
        Field::opt("earliest_benefits_start_date", Ty::Date),
        Field::req("phone_number", Ty::NonEmpty),
        Field::req("email", Ty::NonEmpty),
        Field::opt("bank_account", Ty::Object(&BANK_ACCOUNT)),
        Field::opt("metadata", Ty::StrMap),
    ],
};

/// UpdateEmployeeRequest.
pub static UPDATE_EMPLOYEE: Schema = Schema {
    fields: &[
        Field::opt("first_name", Ty::NonEmpty),
        Field::opt("last_name", Ty::NonEmpty),
        Field::opt("home_address", Ty::Object(&ADDRESS_WITHOUT_COUNTRY)),
        Field::opt("nationality", Ty::Enum(COUNTRY_CODES)),
        Field::opt("national_tax_id", Ty::NonEmpty),
        Field::opt("phone_number", Ty::NonEmpty),
        Field::opt("email", Ty::NonEmpty),
        Field::opt("start_on", Ty::Date),
        Field::opt("earliest_benefits_start_date", Ty::Date),
        Field::opt("bank_account", Ty::Object(&BANK_ACCOUNT)),
        Field::opt("metadata", Ty::StrMap),
    ],
};

/// OffboardEmployeeRequest.
pub static OFFBOARD_EMPLOYEE: Schema = Schema {
    fields: &[
        Field::req("offboard_on", Ty::DateTime),
        Field::req("offboard_reason", Ty::Str),
    ],
};

/// CreateGroupRequest.
pub static CREATE_GROUP: Schema = Schema {
    fields: &[
        Field::req("employer_id", Ty::Prefixed("er_")),
        Field::req("name", Ty::NonEmpty),
        Field::opt("description", Ty::Str),
    ],
};

/// UpdateGroupRequest.
pub static UPDATE_GROUP: Schema = Schema {
    fields: &[
        Field::opt("name", Ty::NonEmpty),
        Field::opt("description", Ty::Str),
    ],
};

/// PolicyConfigurationRequest.
pub static POLICY_CONFIGURATION: Schema = Schema {
    fields: &[
        Field::opt("desired_policy_start_date", Ty::Date),
        Field::opt("enrolment_date", Ty::Date),
    ],
};

/// AddEmployeeToGroupRequest.
pub static ADD_EMPLOYEE_TO_GROUP: Schema = Schema {
    fields: &[
        Field::req("employee_id", Ty::Prefixed("ee_")),
        Field::opt("create_enrolment_intents", Ty::Bool),
        Field::opt("policy_configuration", Ty::Object(&POLICY_CONFIGURATION)),
    ],
};

/// CheckGroupEligibilityRequest.
pub static CHECK_ELIGIBILITY: Schema = Schema {
    fields: &[Field::req("employee_id", Ty::Prefixed("ee_"))],
};

/// Metadata limits from the spec: 25 keys, keys up to 40 characters,
/// values up to 500.
pub fn check_metadata(body: &Value, errors: &mut Errors) {
    let Some(map) = body.get("metadata").and_then(Value::as_object) else {
        return;
    };
    if map.len() > 25 {
        push(errors, "metadata", "At most 25 keys are allowed.");
    }
    for (k, v) in map {
        if k.chars().count() > 40 {
            push(errors, "metadata", "Keys can be up to 40 characters long.");
        }
        if v.as_str().is_some_and(|s| s.chars().count() > 500) {
            push(
                errors,
                &format!("metadata.{k}"),
                "Values can be up to 500 characters long.",
            );
        }
    }
}

/// "State: required for United States (State), and Canada (Province)".
pub fn check_state(address: &Value, country: Option<&str>, path: &str, errors: &mut Errors) {
    let needs_state = matches!(country, Some("us" | "ca"));
    let has_state = address
        .get("state")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty());
    if needs_state && !has_state {
        push(
            errors,
            &format!("{path}.state"),
            "State is required for United States and Canada.",
        );
    }
}

/// E.164: `+`, then 2 to 15 digits not starting with 0.
pub fn check_phone(body: &Value, errors: &mut Errors) {
    if let Some(p) = body.get("phone_number").and_then(Value::as_str) {
        let digits = p.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            push(
                errors,
                "phone_number",
                "Must be in E.164 international format (e.g. +447700900999).",
            );
        }
    }
}

/// A plausible email: something@something.something.
pub fn check_email(body: &Value, field: &str, errors: &mut Errors) {
    if let Some(e) = body.get(field).and_then(Value::as_str) {
        let ok = e
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
        if !ok {
            push(errors, field, "Must be a valid email address.");
        }
    }
}

/// Date of birth in the past but after 1900-01-01; start dates after
/// 1900-01-01.
pub fn check_dates(body: &Value, today: chrono::NaiveDate, errors: &mut Errors) {
    let floor = chrono::NaiveDate::from_ymd_opt(1900, 1, 1);
    let date = |f: &str| body.get(f).and_then(Value::as_str).and_then(parse_date);
    if let (Some(d), Some(floor)) = (date("date_of_birth"), floor) {
        if d >= today || d <= floor {
            push(
                errors,
                "date_of_birth",
                "Must be in the past, but after 1900-01-01.",
            );
        }
    }
    if let (Some(d), Some(floor)) = (date("start_on"), floor) {
        if d <= floor {
            push(errors, "start_on", "Must be after 1900-01-01.");
        }
    }
}
