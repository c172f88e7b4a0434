//! Saved plans: what `thoth plan --out FILE` writes and `thoth apply FILE` checks.
//!
//! A plan file holds the plan as rendered for people and as JSON, the state it was computed
//! from (lineage and serial), a fingerprint of every remote object the plan touches, and a
//! salted digest of every secret it would send: never a secret value. Apply computes the plan
//! again and refuses, naming the reason, unless the state, the remote objects and the plan
//! itself are exactly what was reviewed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{resource_type, Plan};
use crate::remote::mapping::canonical_text;
use crate::remote::Snapshot;
use crate::schema::Kind;
use crate::state::State;

const FORMAT: &str = "thoth-plan";
const FORMAT_VERSION: u32 = 2;

/// A saved plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    pub format_version: u32,
    pub thoth_version: String,
    pub tenant_id: String,
    /// The lineage and serial of the state the plan was computed from; empty and 0 when there
    /// was no state yet.
    pub state_lineage: String,
    pub state_serial: u64,
    /// A digest of what the state's journal held (entries of an interrupted run that the
    /// stored state does not have yet); empty when it held nothing.
    #[serde(default)]
    pub state_journal: String,
    /// The random salt of `secret_digests`, chosen for this plan.
    pub digest_salt: String,
    /// Per address, a digest of the remote object as read while planning (`absent` when the
    /// control plane had none).
    pub remote_fingerprints: BTreeMap<String, String>,
    /// Per address and secret attribute, a salted digest of the value the plan would send.
    pub secret_digests: BTreeMap<String, BTreeMap<String, String>>,
    /// What the plan was made for: `--target`, `--replace` and destroy. Apply plans again with
    /// the same selection.
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub replace: Vec<String>,
    #[serde(default)]
    pub destroy: bool,
    /// Made with `--refresh=false`: applied against the state as recorded.
    #[serde(default)]
    pub no_refresh: bool,
    /// Made for a stage of a rollout (or its rollback).
    #[serde(default)]
    pub stage: Option<crate::plan::rollout::StageSelection>,
    /// A digest of every configuration file the plan was computed from (names and texts).
    pub configuration: String,
    /// Per root variable, a digest of its value: a variable that only feeds a value known
    /// after apply still binds the plan.
    pub variables: BTreeMap<String, String>,
    /// The plan in the versioned JSON format of `schemas/plan.schema.json`.
    pub plan: serde_json::Value,
    pub human: String,
    pub markdown: String,
}

fn sha256(text: &str) -> String {
    crate::state::hex(&Sha256::digest(text.as_bytes()))
}

/// A digest of the configuration's files, names and texts, in name order.
fn configuration_digest(conf: &crate::evaluate::Configuration) -> String {
    let mut files: Vec<&crate::config::SourceFile> = conf.module.files.iter().collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for f in files {
        h.update(f.name.as_bytes());
        h.update([0u8]);
        h.update(f.text.len().to_le_bytes());
        h.update(f.text.as_bytes());
    }
    crate::state::hex(&h.finalize())
}

/// A digest of each remote object the plan touches, as the snapshot holds it.
pub fn fingerprints(plan: &Plan, snapshot: &Snapshot) -> BTreeMap<String, String> {
    plan.changes
        .iter()
        .filter(|c| !matches!(c.kind, Kind::Action | Kind::DataSource))
        .filter_map(|c| {
            let rt = resource_type(&c.address);
            let id = match rt.kind {
                Kind::SettingsSection | Kind::Singleton => plan.tenant_id.clone(),
                _ => c.prior_id.clone()?,
            };
            let print = snapshot.object(rt, &id).map_or_else(
                || "absent".to_owned(),
                |row| sha256(&canonical_text(&serde_json::Value::Object(row.into_owned()))),
            );
            Some((c.address.to_string(), print))
        })
        .collect()
}

impl PlanFile {
    /// The saved form of a plan computed from `state` and `snapshot`; `salt` is the salt of a
    /// saved plan this one is compared with, or `None` for a new plan.
    pub fn new(
        conf: &crate::evaluate::Configuration,
        plan: &Plan,
        state: &State,
        journal: &str,
        snapshot: &Snapshot,
        selection: &crate::plan::Selection,
        salt: Option<&str>,
    ) -> PlanFile {
        let salt = salt.map_or_else(|| crate::state::hex(&crate::state::random_bytes::<16>()), str::to_owned);
        let secret_digests = plan
            .changes
            .iter()
            .filter_map(|c| {
                let digests: BTreeMap<String, String> = c
                    .desired
                    .iter()
                    // Lowering marks every secret value, sensitive attributes included.
                    .filter(|(name, _)| c.sensitive.contains(*name))
                    .map(|(name, value)| {
                        let context = [c.address.to_string(), name.clone()];
                        let context: Vec<&str> = context.iter().map(String::as_str).collect();
                        (name.clone(), crate::state::digest::make(&salt, &context, &value.to_json().to_string()))
                    })
                    .collect();
                (!digests.is_empty()).then(|| (c.address.to_string(), digests))
            })
            .collect();
        PlanFile {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            thoth_version: env!("CARGO_PKG_VERSION").to_owned(),
            tenant_id: plan.tenant_id.clone(),
            // A state never saved has a lineage of its own on every load.
            state_lineage: if state.serial == 0 { String::new() } else { state.lineage.clone() },
            state_serial: state.serial,
            state_journal: journal.to_owned(),
            digest_salt: salt.clone(),
            remote_fingerprints: fingerprints(plan, snapshot),
            secret_digests,
            configuration: configuration_digest(conf),
            variables: conf
                .variables
                .iter()
                .map(|(name, (value, _))| {
                    (name.clone(), crate::state::digest::make(&salt, &["variable", name], &value.to_json().to_string()))
                })
                .collect(),
            targets: selection.targets.iter().map(ToString::to_string).collect(),
            replace: selection.replace.iter().map(ToString::to_string).collect(),
            destroy: selection.destroy,
            no_refresh: selection.no_refresh,
            stage: selection.stage.clone(),
            plan: serde_json::from_str(&crate::render::plan_json(plan)).unwrap_or_default(),
            human: crate::render::plan_human(plan),
            markdown: crate::render::plan_markdown(plan, crate::render::MARKDOWN_LIMIT),
        }
    }

    /// Writes the plan file privately and atomically.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        text.push('\n');
        crate::state::write_atomic(path, text.as_bytes())
            .map_err(|e| format!("cannot write the plan file `{}`: {e}", path.display()))
    }

    pub fn read(path: &Path) -> Result<PlanFile, String> {
        let text = crate::files::read_text(path, crate::files::MAX_DOCUMENT)
            .map_err(|e| format!("cannot read the plan file `{}`: {e}", path.display()))?;
        PlanFile::from_text(&text, &path.display().to_string())
    }

    /// Reads a plan file's text; `source` names it in errors.
    pub fn from_text(text: &str, source: &str) -> Result<PlanFile, String> {
        let file: PlanFile =
            serde_json::from_str(text).map_err(|e| format!("`{source}` is not a thoth plan file: {e}"))?;
        if file.format != FORMAT || file.format_version != FORMAT_VERSION {
            return Err(format!(
                "`{source}` is a plan file of format {} version {}, which this thoth does not read",
                file.format, file.format_version
            ));
        }
        Ok(file)
    }

    /// The selection the plan was made for.
    pub fn selection(&self) -> crate::plan::Selection {
        let parse = |text: &String| crate::plan::rollout::parse_target(text);
        crate::plan::Selection {
            targets: self.targets.iter().filter_map(parse).collect(),
            replace: self.replace.iter().filter_map(parse).collect(),
            destroy: self.destroy,
            no_refresh: self.no_refresh,
            stage: self.stage.clone(),
        }
    }

    /// Why the freshly computed plan is not the saved one, or `Ok` when it is exactly it.
    pub fn check(&self, fresh: &PlanFile) -> Result<(), String> {
        if self.tenant_id != fresh.tenant_id {
            return Err(format!("the plan is for tenant `{}`, not `{}`", self.tenant_id, fresh.tenant_id));
        }
        if self.state_lineage != fresh.state_lineage || self.state_serial != fresh.state_serial {
            return Err(format!(
                "the state changed since the plan was made (lineage {} serial {}, now lineage {} serial {})",
                self.state_lineage, self.state_serial, fresh.state_lineage, fresh.state_serial
            ));
        }
        if self.state_journal != fresh.state_journal {
            return Err("the state's journal changed since the plan was made (another run was interrupted)".to_owned());
        }
        // Both ways: an entry removed from the file must not switch the check off.
        let mut changed: Vec<&String> = self
            .remote_fingerprints
            .iter()
            .filter(|(address, print)| fresh.remote_fingerprints.get(*address) != Some(print))
            .map(|(address, _)| address)
            .collect();
        changed.extend(fresh.remote_fingerprints.keys().filter(|a| !self.remote_fingerprints.contains_key(*a)));
        changed.sort();
        changed.dedup();
        if !changed.is_empty() {
            return Err(format!(
                "{} changed on the control plane since the plan was made",
                changed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if self.secret_digests != fresh.secret_digests {
            return Err(
                "a secret value differs from the one the plan was made with (or the digest key does)".to_owned()
            );
        }
        if self.configuration != fresh.configuration {
            return Err("the configuration files changed since the plan was made".to_owned());
        }
        let mut names: Vec<&String> = self.variables.keys().chain(fresh.variables.keys()).collect();
        names.sort();
        names.dedup();
        let differ: Vec<String> = names
            .into_iter()
            .filter(|n| self.variables.get(*n) != fresh.variables.get(*n))
            .map(|n| format!("`var.{n}`"))
            .collect();
        if !differ.is_empty() {
            return Err(format!("{} differ from the values the plan was made with", differ.join(", ")));
        }
        // What reading the tenant cost is not part of what was reviewed.
        let reviewed = |plan: &serde_json::Value| {
            let mut plan = plan.clone();
            if let Some(map) = plan.as_object_mut() {
                map.remove("refresh");
            }
            plan
        };
        if reviewed(&self.plan) != reviewed(&fresh.plan) {
            return Err("the configuration and variables no longer produce the same plan".to_owned());
        }
        // What a reviewer read (`thoth show`, the pull request comment) is what is applied.
        if self.human != fresh.human || self.markdown != fresh.markdown {
            return Err("the plan's text in the file is not what this plan renders: the file was altered".to_owned());
        }
        Ok(())
    }
}
