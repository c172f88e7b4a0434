//! The machine-readable plan: a versioned JSON document described by
//! `schemas/plan.schema.json`. Secrets appear only as `{"kind": "sensitive"}`.

use serde_json::{json, Map, Value as Json};

use super::plan::{action_text, impact_counts, shown_changes};
use crate::config::CheckResult;
use crate::model::{InstanceKey, Value};
use crate::plan::{Action, AttrChange, Change, Plan, Shown};

/// The version of the JSON plan format; it changes when a field changes meaning or goes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

pub(crate) fn action_name(action: Action) -> &'static str {
    match action {
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Forget => "forget",
        Action::Create => "create",
        Action::Update => "update",
        Action::Run => "run",
        Action::Read => "read",
        Action::NoOp => "no-op",
    }
}

fn shown(s: &Shown) -> Json {
    match s {
        Shown::Absent => json!({"kind": "absent"}),
        Shown::Value(v) => json!({"kind": "value", "value": v.to_json()}),
        Shown::Sensitive => json!({"kind": "sensitive"}),
        Shown::Unknown => json!({"kind": "unknown"}),
    }
}

fn attribute(a: &AttrChange) -> Json {
    json!({
        "name": a.name,
        "before": shown(&a.before),
        "after": shown(&a.after),
        "forces_replacement": a.forces_replacement,
        "impact": a.impact.label(),
        "drift": a.drift,
    })
}

pub(crate) fn change(c: &Change) -> Json {
    let key = match &c.address.key {
        None => Json::Null,
        Some(InstanceKey::Index(i)) => json!(i),
        Some(InstanceKey::Name(k)) => json!(k),
    };
    let identifying: Map<String, Json> = c.identifying.iter().map(|(n, v)| (n.clone(), v.to_json())).collect();
    json!({
        "address": c.address.to_string(),
        "mode": if c.kind == crate::schema::Kind::DataSource { "data" } else { "managed" },
        "type": c.address.type_name,
        "name": c.address.name,
        "key": key,
        "action": action_name(c.action),
        "soft_delete": c.soft,
        "summary": format!("{} {}", c.address, action_text(c)),
        "impact": c.impact().label(),
        "drifted": c.drifted,
        "note": c.note,
        "prior_id": c.prior_id,
        "id_after": shown(&c.id_after),
        "protective": c.protective,
        "forces_replacement": c.attrs.iter().filter(|a| a.forces_replacement).map(|a| a.name.clone()).collect::<Vec<_>>(),
        "identifying": identifying,
        "attributes": c.attrs.iter().map(attribute).collect::<Vec<_>>(),
        "depends_on": c.deps.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "import_id": c.import,
        "moved_from": c.moved_from.as_ref().map(ToString::to_string),
        "outside": c.outside,
    })
}

/// One check result, as the plan and the apply event stream carry it.
pub fn check(c: &CheckResult) -> Json {
    json!({
        "address": c.address,
        "kind": c.kind.as_str(),
        "status": c.status.as_str(),
        "messages": c.messages,
    })
}

/// One output: its value when known and not sensitive.
pub fn output(name: &str, value: &Value, sensitive: bool) -> Json {
    let shown = if sensitive {
        Shown::Sensitive
    } else if value.is_known() {
        Shown::Value(value.clone())
    } else {
        Shown::Unknown
    };
    json!({ "name": name, "sensitive": sensitive, "value": self::shown(&shown) })
}

/// The plan as a JSON document (pretty-printed, with a final newline).
pub fn plan_json(plan: &Plan) -> String {
    let s = plan.summary();
    let [(_, loosens), (_, tightens), (_, unknown)] = impact_counts(plan);
    let doc = json!({
        "format_version": PLAN_FORMAT_VERSION,
        "thoth_version": env!("CARGO_PKG_VERSION"),
        "tenant_id": plan.tenant_id,
        "refresh_only": plan.refresh_only,
        "summary": {
            "import": s.import,
            "moved": s.moved,
            "create": s.create,
            "update": s.update,
            "replace": s.replace,
            "delete": s.delete,
            "forget": s.forget,
            "run": s.run,
            "unchanged": s.unchanged,
        },
        "impact": {
            "overall": plan.impact().label(),
            "loosens": loosens,
            "tightens": tightens,
            "unknown": unknown,
        },
        "changes": shown_changes(plan).into_iter().map(change).collect::<Vec<_>>(),
        "unmanaged": plan.unmanaged,
        "refresh": {
            "calls": plan.refresh.calls,
            "milliseconds": plan.refresh.milliseconds,
        },
        "checks": plan.checks.iter().map(check).collect::<Vec<_>>(),
        "rollout": plan.rollout.as_ref().map(|v| json!({
            "name": v.name,
            "stage": v.stage,
            "rollback": v.rollback,
            "stages": v.stages.iter().map(|s| json!({
                "name": s.name,
                "pending": s.pending,
                "applied_at": s.applied_at,
                "gate_passes": s.gate_passes,
                "soak_until": s.soak_until,
            })).collect::<Vec<_>>(),
            "held": v.held.iter().map(|h| json!({
                "address": h.address.to_string(),
                "action": action_name(h.action),
                "stage": h.stage,
            })).collect::<Vec<_>>(),
        })),
        "outputs": plan.outputs.iter().map(|(n, v, s)| output(n, v, *s)).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
