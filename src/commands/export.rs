//! `thoth export [--out DIR] [--type TYPE]...`: the tenant as a configuration directory whose
//! plan imports everything it holds.

use std::path::Path;

use super::session;
use super::{err, fail, out, ERROR, OK};
use crate::adopt::export;
use crate::cli::ExportArgs;
use crate::remote::snapshot::Needs;

pub(super) async fn run(args: &ExportArgs) -> u8 {
    let types = match export::types(&args.types) {
        Ok(t) => t,
        Err(e) => return fail(&e, None),
    };
    if args.out.exists() && std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some()) {
        return fail(
            &format!("`{}` is not empty", args.out.display()),
            Some("export into a new directory: the files it writes would replace what is there"),
        );
    }
    // The connection comes from flags and the environment, or from the configuration here.
    let conf = session::configuration_for_connection(&args.vars);
    let Some(session) = session::connect(&args.connection, &conf.module, &conf.variables).await else { return ERROR };
    let mut needs = Needs::default();
    for rt in &types {
        needs.add_every(rt);
    }
    let snapshot = crate::remote::snapshot::refresh(&session.client, &needs).await;
    let tenant = session.client.tenant().to_owned();
    session.close().await;
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot read the tenant: {e}"), None),
    };
    let exported = export::export(&snapshot, &tenant, &types);
    if let Err(e) = write(&args.out, &exported.files) {
        return fail(&format!("cannot write `{}`: {e}", args.out.display()), None);
    }
    out(&format!(
        "Exported {} object(s) of tenant `{tenant}` into `{}` ({} file(s)).\n",
        exported.objects,
        args.out.display(),
        exported.files.len()
    ));
    if !exported.secrets.is_empty() {
        out(&format!(
            "The control plane never returns secrets: give these before planning (THOTH_VAR_<name> or a `--var-file` outside the repository): {}\n",
            exported.secrets.join(", ")
        ));
    }
    for skipped in &exported.skipped {
        err(&format!("note: not exported: {skipped}\n"));
    }
    out(&format!("Next: `thoth -chdir={} plan` shows the imports; `apply` records them.\n", args.out.display()));
    OK
}

fn write(dir: &Path, files: &std::collections::BTreeMap<String, String>) -> std::io::Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}
