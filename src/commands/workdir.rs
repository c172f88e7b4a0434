//! What thoth keeps in a configuration directory between runs, under `.thoth/` (private, and
//! ignoring itself so that `git add -A` never picks it up): the selected workspace
//! (`.thoth/environment`) and the backend the last `thoth init` prepared
//! (`.thoth/backend.json`), so that a changed backend is noticed instead of starting over.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::TargetArgs;
use crate::config::{BackendSettings, LocalSettings, Module, PgSettings, S3Settings};
use crate::state::backend::{valid_workspace, DEFAULT_WORKSPACE};

pub(super) const DIR: &str = ".thoth";
const ENVIRONMENT: &str = "environment";
const RECORD: &str = "backend.json";

/// Creates `.thoth/` (mode 0700, with a `.gitignore` of everything) and returns its path.
pub(super) fn private_dir() -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(DIR);
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "*\n")?;
    }
    Ok(dir)
}

/// The backend settings of the configuration: the local state file when it declares none.
pub(super) fn backend_settings(module: &Module) -> BackendSettings {
    module.backend.as_ref().map_or_else(|| BackendSettings::Local(LocalSettings::default()), |b| b.settings.clone())
}

/// The selected workspace: `THOTH_WORKSPACE` (or Terraform's `TF_WORKSPACE`), else the one
/// `thoth workspace select` recorded, else `default`.
pub(super) fn workspace() -> Result<String, String> {
    let from_env = ["THOTH_WORKSPACE", "TF_WORKSPACE"]
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()));
    let name = match from_env {
        Some(w) => w,
        None => match std::fs::read_to_string(Path::new(DIR).join(ENVIRONMENT)) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_WORKSPACE.to_owned(),
            Err(e) => return Err(format!("cannot read the selected workspace in `{DIR}/{ENVIRONMENT}`: {e}")),
        },
    };
    if valid_workspace(&name) {
        Ok(name)
    } else {
        Err(format!("`{name}` is not a valid workspace name: use letters, digits, `-`, `_` and `.`"))
    }
}

/// The configuration directory relative to the root of its git repository (`.` at the root,
/// its absolute path outside any repository), with `/` between names.
pub(super) fn repository_path() -> String {
    let Ok(here) = std::env::current_dir() else { return ".".to_owned() };
    let Some(root) = here.ancestors().find(|d| d.join(".git").exists()) else {
        return here.display().to_string();
    };
    let rel = here.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default();
    let text = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}

/// The workspace of a command: a Terraform Stacks deployment's own, or the selected one.
pub(super) fn workspace_for(vars: &crate::cli::VarArgs) -> Result<String, String> {
    match &vars.deployment {
        Some(d) if valid_workspace(d) => Ok(d.clone()),
        Some(d) => Err(format!("`{d}` cannot name a deployment's state: use letters, digits, `-`, `_` and `.`")),
        None => workspace(),
    }
}

/// Records the selected workspace.
pub(super) fn select_workspace(name: &str) -> std::io::Result<()> {
    let dir = private_dir()?;
    if name == DEFAULT_WORKSPACE {
        return match std::fs::remove_file(dir.join(ENVIRONMENT)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    crate::state::write_atomic(&dir.join(ENVIRONMENT), format!("{name}\n").as_bytes())
}

/// The backend the last `thoth init` prepared, as configured then.
pub(super) fn recorded_backend() -> Result<Option<BackendSettings>, String> {
    let path = Path::new(DIR).join(RECORD);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let record: Record = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not readable ({e}): remove it and run `thoth init` again", path.display()))?;
    Ok(Some(record.into_settings()))
}

/// Records the backend `thoth init` prepared. Only what the configuration itself says is
/// written, so nothing that was not already in the configuration's files lands here.
pub(super) fn record_backend(settings: &BackendSettings) -> std::io::Result<()> {
    let dir = private_dir()?;
    let mut text = serde_json::to_string_pretty(&Record::from_settings(settings)).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::state::write_atomic(&dir.join(RECORD), text.as_bytes())
}

/// A refusal: what is wrong and the hint.
pub(super) struct Refusal(pub String, pub String);

/// Refuses to use the configured backend when the state lives elsewhere: the backend changed
/// since `thoth init`, or a local state file is here while the configuration keeps the state
/// in a shared backend. Either would otherwise start from an empty state and create the
/// tenant's objects a second time.
pub(super) fn check_backend(configured: &BackendSettings, target: &TargetArgs) -> Result<(), Refusal> {
    let recorded = recorded_backend().map_err(|e| Refusal(e, "run `thoth init` again".to_owned()))?;
    match recorded {
        Some(recorded) if &recorded != configured => Err(Refusal(
            format!(
                "the backend changed since `thoth init` (it was `{}`, the configuration now says `{}`)",
                recorded.name(),
                configured.name()
            ),
            "run `thoth init --migrate-state` to move the state into the new backend, or `thoth init --reconfigure` to use it without moving anything".to_owned(),
        )),
        Some(_) => Ok(()),
        None if !matches!(configured, BackendSettings::Local(_)) && stray_local_state(target).is_some() => {
            Err(Refusal(
                format!(
                    "`{}` holds a local state, but the configuration keeps the state in the `{}` backend",
                    stray_local_state(target).unwrap_or_default().display(),
                    configured.name()
                ),
                "run `thoth init --migrate-state` to move it there (or remove the file if it is not needed)".to_owned(),
            ))
        }
        None => Ok(()),
    }
}

/// The local state file of the default backend, when there is one with something in it.
pub(super) fn stray_local_state(target: &TargetArgs) -> Option<PathBuf> {
    let path = target.state.clone().unwrap_or_else(|| PathBuf::from(crate::state::backend::local::DEFAULT_PATH));
    let meta = std::fs::metadata(&path).ok()?;
    (meta.len() > 0).then_some(path)
}

/// `.thoth/backend.json`: the backend settings as the configuration wrote them.
#[derive(Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
// Read and written once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Record {
    Local {
        path: Option<String>,
        workspace_dir: Option<String>,
    },
    Pg {
        conn_str: Option<String>,
        schema_name: String,
        skip_schema_creation: bool,
    },
    S3 {
        bucket: String,
        key: String,
        region: Option<String>,
        endpoint: Option<String>,
        use_path_style: bool,
        workspace_key_prefix: String,
        use_lockfile: bool,
        profile: Option<String>,
        shared_credentials_files: Vec<String>,
        shared_config_files: Vec<String>,
        access_key: Option<String>,
        secret_key: Option<String>,
        token: Option<String>,
    },
}

impl Record {
    fn from_settings(settings: &BackendSettings) -> Record {
        match settings.clone() {
            BackendSettings::Local(l) => Record::Local { path: l.path, workspace_dir: l.workspace_dir },
            BackendSettings::Pg(p) => Record::Pg {
                conn_str: p.conn_str,
                schema_name: p.schema_name,
                skip_schema_creation: p.skip_schema_creation,
            },
            BackendSettings::S3(s) => {
                let s = *s;
                Record::S3 {
                    bucket: s.bucket,
                    key: s.key,
                    region: s.region,
                    endpoint: s.endpoint,
                    use_path_style: s.use_path_style,
                    workspace_key_prefix: s.workspace_key_prefix,
                    use_lockfile: s.use_lockfile,
                    profile: s.profile,
                    shared_credentials_files: s.shared_credentials_files,
                    shared_config_files: s.shared_config_files,
                    access_key: s.access_key,
                    secret_key: s.secret_key,
                    token: s.token,
                }
            }
        }
    }

    fn into_settings(self) -> BackendSettings {
        match self {
            Record::Local { path, workspace_dir } => BackendSettings::Local(LocalSettings { path, workspace_dir }),
            Record::Pg { conn_str, schema_name, skip_schema_creation } => {
                BackendSettings::Pg(PgSettings { conn_str, schema_name, skip_schema_creation })
            }
            Record::S3 {
                bucket,
                key,
                region,
                endpoint,
                use_path_style,
                workspace_key_prefix,
                use_lockfile,
                profile,
                shared_credentials_files,
                shared_config_files,
                access_key,
                secret_key,
                token,
            } => BackendSettings::S3(Box::new(S3Settings {
                bucket,
                key,
                region,
                endpoint,
                use_path_style,
                workspace_key_prefix,
                use_lockfile,
                profile,
                shared_credentials_files,
                shared_config_files,
                access_key,
                secret_key,
                token,
            })),
        }
    }
}
