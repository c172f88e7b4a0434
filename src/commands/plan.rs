//! `thoth plan`: what apply would change, with its security impact, optionally saved.

use super::session::{self, human};
use super::workdir;
use super::{err, fail, out, CHANGES, ERROR, LOOSENS, OK};
use crate::cli::{Format, PlanArgs};
use crate::plan::Impact;
use crate::planfile::PlanFile;
use crate::render;

pub(super) async fn run(args: &PlanArgs) -> u8 {
    let Some(conf) = session::load(&args.vars) else { return ERROR };
    let Some(session) = session::connect(&args.connection, &conf).await else { return ERROR };
    let tenant = session.client.tenant().to_owned();
    let code = match session::open_store(&conf.module, &args.connection.target, Some(tenant), &conf.workspace).await {
        Ok(store) => plan_with(args, &conf, &session, &store).await,
        Err(code) => code,
    };
    session.close().await;
    code
}

async fn plan_with(
    args: &PlanArgs,
    conf: &crate::evaluate::Configuration,
    session: &session::Session,
    store: &crate::state::Store,
) -> u8 {
    // Saving a plan takes the lock, so that the plan is made from a state no apply is writing.
    let lock = match &args.out {
        Some(_) => match session::take_lock(store, "plan", &args.lock).await {
            Ok(lock) => lock,
            Err(code) => return code,
        },
        None => None,
    };
    let planned = session::make_plan(conf, session, store).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    let Some(planned) = planned else { return ERROR };
    if let Some(file) = &args.out {
        let saved = PlanFile::new(&planned.plan, &planned.state, &planned.journal_digest, &planned.snapshot, None);
        if let Err(e) = saved.write(file) {
            return fail(&e, None);
        }
        err(&format!(
            "The plan is saved in `{}`; `thoth apply {}` applies exactly it.\n",
            file.display(),
            file.display()
        ));
    }
    out(&match args.format {
        Format::Human => human(&planned.plan),
        Format::Markdown => {
            let marker = render::markdown_marker(&workdir::repository_path(), &planned.plan.tenant_id, &conf.workspace);
            let plan = render::plan_markdown(&planned.plan, render::MARKDOWN_LIMIT - marker.len());
            format!("{marker}{plan}")
        }
        Format::Json => render::plan_json(&planned.plan),
    });
    if args.deny_loosening && planned.plan.impact() == Impact::Loosens {
        err("error: the plan loosens the tenant's security, and `--deny-loosening` was given\n");
        LOOSENS
    } else if args.detailed_exitcode && planned.plan.has_changes() {
        CHANGES
    } else {
        OK
    }
}
