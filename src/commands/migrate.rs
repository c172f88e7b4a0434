//! `thoth migrate terraform PATH`: a Terraform state written with the `atensecurity/thoth`
//! provider becomes the configuration's thoth state, with no plaintext secret.

use super::session::{self, open_state};
use super::{err, fail, out, ERROR, OK};
use crate::adopt::terraform;
use crate::cli::{MigrateArgs, MigrateCommand};

pub(super) async fn run(command: MigrateCommand) -> u8 {
    match command {
        MigrateCommand::Terraform(args) => from_terraform(&args).await,
    }
}

async fn from_terraform(args: &MigrateArgs) -> u8 {
    let text = match crate::files::read_text(&args.path, crate::files::MAX_DOCUMENT) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read `{}`: {e}", args.path.display()), None),
    };
    let tenant = match session::load_for_state(&args.state) {
        Ok((_, tenant)) => tenant,
        Err(code) => return code,
    };
    let migrated = match terraform::migrate(&text, tenant.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail(&format!("`{}` cannot be migrated: {e}", args.path.display()), None),
    };
    let store = match open_state(&args.state).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    session::under_lock(&store, "migrate terraform", &args.lock, async || write(args, migrated, &store).await).await
}

async fn write(args: &MigrateArgs, migrated: terraform::Migrated, store: &crate::state::Store) -> u8 {
    let existing = match store.load().await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), None),
    };
    if !existing.resources.is_empty() && !args.force {
        return fail(
            &format!("{} already holds a state of {} object(s)", store.describe(), existing.resources.len()),
            Some("migrate into an empty state, or pass `--force` to replace it (its backup is kept)"),
        );
    }
    let mut state = migrated.state;
    state.serial = existing.serial;
    if let Err(e) = store.save(&mut state).await {
        return fail(&e.to_string(), None);
    }
    let mut text =
        format!("Moved {} object(s) from `{}` into {}:\n", migrated.moved.len(), args.path.display(), store.describe());
    for address in &migrated.moved {
        text.push_str(&format!("  {address}\n"));
    }
    out(&text);
    for skipped in &migrated.skipped {
        err(&format!("note: not moved: {skipped}\n"));
    }
    if migrated.secrets > 0 {
        err(&format!(
            "warning: `{}` still holds {} secret(s) in plaintext; thoth kept only salted digests of them. Delete that file, or keep it where those secrets are safe.\n",
            args.path.display(),
            migrated.secrets
        ));
    }
    out("Next: `thoth plan` on the same configuration should show no change.\n");
    if migrated.moved.is_empty() {
        return ERROR;
    }
    OK
}
