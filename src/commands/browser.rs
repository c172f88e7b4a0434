//! `thoth browser sync`: on the endpoint, the browser's managed-policy file made to match what
//! GovAPI says the device must enforce, as plan and apply on one file. `--dry-run` prints
//! the diff; otherwise the file is replaced atomically, the previous one kept as
//! `<file>.thoth-backup`. The file is thoth's own: a record beside it (`.<file>.thoth`) holds
//! the digest of what thoth wrote, and a file thoth did not write, or that was changed by hand
//! since, is never replaced without `--force`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use sha2::Digest as _;

use super::session::{self, Session};
use super::{fail, out, ERROR, OK};
use crate::browser::{self, Effective, Platform};
use crate::cli::{BrowserSyncArgs, VarArgs};

pub(super) async fn sync(args: &BrowserSyncArgs) -> u8 {
    let conf = session::configuration_for_connection(&VarArgs::default());
    let Some(session) = session::connect(&args.connection, &conf.module, &conf.variables).await else { return ERROR };
    let code = sync_with(args, &session).await;
    session.close().await;
    code
}

/// What the sync does to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Delete,
    NoOp,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }
}

async fn sync_with(args: &BrowserSyncArgs, session: &Session) -> u8 {
    let client = &session.client;
    let provider = args.browser.provider();
    let query = [("provider", provider)];
    let read = |path: &'static str| async move {
        let body = client.get(path, &query).await.map_err(|e| e.to_string())?;
        crate::remote::list_rows(body, "data")
    };
    let (enrollments, policies) = match (read("browser/enrollments").await, read("browser/policies").await) {
        (Ok(e), Ok(p)) => (e, p),
        (Err(e), _) | (_, Err(e)) => {
            return fail(&format!("cannot read the browser governance of the tenant: {e}"), None)
        }
    };
    let effective = match browser::effective(&enrollments, &policies, &args.device_id, &args.user_id, args.browser) {
        Ok(e) => e,
        Err(e) => return fail(&e, Some("make the policies agree in GovAPI, then sync again")),
    };
    let platform = args.platform.unwrap_or_else(Platform::current);
    let (default_dir, name) = args.browser.location(platform);
    let dir = args.policy_dir.clone().unwrap_or(default_dir);
    let path = dir.join(name);
    let record = dir.join(format!(".{name}.thoth"));
    let current = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return refuse(&path, &e),
    };
    if let Some(text) = &current {
        if !args.force && !written_by_thoth(&record, text) {
            return fail(
                &format!("`{}` was not written by thoth, or was changed by hand since", path.display()),
                Some("move it aside, or pass `--force` to replace it (it is kept as a backup)"),
            );
        }
    }
    let wanted = effective.merged.as_ref().map(|m| browser::render(args.browser, platform, m, &args.device_id));
    let action = match (&current, &wanted) {
        (None, None) => Action::NoOp,
        (None, Some(_)) => Action::Create,
        (Some(_), None) => Action::Delete,
        (Some(a), Some(b)) if a == b => Action::NoOp,
        (Some(_), Some(_)) => Action::Update,
    };
    let diff = similar::TextDiff::from_lines(current.as_deref().unwrap_or(""), wanted.as_deref().unwrap_or(""))
        .unified_diff()
        .context_radius(3)
        .header(&format!("{} (now)", path.display()), &format!("{} (synced)", path.display()))
        .to_string();
    if !args.dry_run && action != Action::NoOp {
        let written = match &wanted {
            Some(text) => {
                let about = json!({
                    "generated_by": "thoth browser sync",
                    "thoth_version": env!("CARGO_PKG_VERSION"),
                    "tenant_id": session.client.tenant(),
                    "device_id": args.device_id,
                    "user_id": args.user_id,
                    "browser": provider,
                    "enrollment_id": effective.enrollment_id,
                    "policies": effective.policies.iter().filter(|p| p.applied).map(|p| p.policy_id.clone()).collect::<Vec<_>>(),
                    "sha256": digest(text),
                });
                let about = format!("{}\n", serde_json::to_string_pretty(&about).unwrap_or_default());
                write(&dir, (&path, text), (&record, &about), current.as_deref())
            }
            None => remove(&path, &record),
        };
        if let Err(e) = written {
            return refuse(&path, &e);
        }
    }
    if args.json {
        let doc = json!({
            "device_id": args.device_id,
            "user_id": args.user_id,
            "browser": provider,
            "path": path.display().to_string(),
            "enrollment_id": effective.enrollment_id,
            "action": action.as_str(),
            "dry_run": args.dry_run,
            "changed": action != Action::NoOp && !args.dry_run,
            "diff": diff,
            "policies": effective.policies.iter().map(|p| json!({
                "policy_id": p.policy_id, "name": p.name, "version": p.version,
                "enforcement_mode": p.enforcement_mode, "applied": p.applied,
            })).collect::<Vec<_>>(),
        });
        out(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    } else {
        out(&report(args, &path, action, &diff, &effective));
    }
    OK
}

fn report(args: &BrowserSyncArgs, path: &Path, action: Action, diff: &str, effective: &Effective) -> String {
    let mut text = match &effective.enrollment_id {
        Some(id) => format!("Device `{}` of `{}` is enrolled ({id}).\n", args.device_id, args.user_id),
        None => format!(
            "Device `{}` of `{}` has no active {} enrollment: no policy applies.\n",
            args.device_id,
            args.user_id,
            args.browser.provider()
        ),
    };
    for p in &effective.policies {
        let version = p.version.map(|v| format!(" v{v}")).unwrap_or_default();
        let how = if p.applied { "enforced" } else { "monitor mode: reported, not written" };
        text.push_str(&format!("  {} {}{version} ({how})\n", if p.applied { "+" } else { "·" }, p.name));
    }
    text.push('\n');
    let shown = path.display();
    let verb = if args.dry_run { "would" } else { "did" };
    match (action, args.dry_run) {
        (Action::NoOp, _) => text.push_str(&format!("No changes. `{shown}` holds the device's policies.\n")),
        (a, _) => {
            text.push_str(diff);
            let what = match a {
                Action::Create => "create",
                Action::Update => "update",
                _ => "remove",
            };
            if args.dry_run {
                text.push_str(&format!("\nthoth {verb} {what} `{shown}`; run without `--dry-run` to apply.\n"));
            } else {
                text.push_str(&format!("\nthoth {verb} {what} `{shown}`."));
                if a != Action::Create {
                    text.push_str(&format!(" The previous file is `{shown}.thoth-backup`."));
                }
                text.push('\n');
            }
        }
    }
    text
}

fn digest(text: &str) -> String {
    crate::state::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// Whether the record beside the file says thoth wrote exactly this content.
fn written_by_thoth(record: &Path, text: &str) -> bool {
    std::fs::read_to_string(record)
        .ok()
        .and_then(|r| serde_json::from_str::<Json>(&r).ok())
        .is_some_and(|r| r.get("sha256").and_then(Json::as_str) == Some(digest(text).as_str()))
}

/// Writes the file (the previous one kept as the backup), then the record of what thoth wrote.
fn write(dir: &Path, file: (&Path, &str), record: (&Path, &str), current: Option<&str>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(old) = current {
        replace(&backup(file.0), old)?;
    }
    replace(file.0, file.1)?;
    replace(record.0, record.1)
}

/// Nothing applies any more: the file goes (kept as the backup), and its record with it.
fn remove(path: &Path, record: &Path) -> std::io::Result<()> {
    std::fs::rename(path, backup(path))?;
    match std::fs::remove_file(record) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn backup(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".thoth-backup");
    PathBuf::from(name)
}

/// Writes through a temporary sibling (synced, then renamed), readable by the browser.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".thoth-tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn refuse(path: &Path, e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return fail(
            &format!("cannot write `{}`: permission denied", path.display()),
            Some("the browser's managed-policy directory belongs to root: run it with `sudo thoth browser sync ...`"),
        );
    }
    fail(&format!("cannot write `{}`: {e}", path.display()), None)
}
