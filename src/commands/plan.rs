//! `thoth plan`: what apply would change, with its security impact, optionally saved.

use super::session::{self, human};
use super::workdir;
use super::{err, fail, out, stream, CHANGES, ERROR, LOOSENS, OK};
use crate::cli::{Format, PlanArgs};
use crate::plan::Impact;
use crate::planfile::PlanFile;
use crate::render;

pub(super) async fn run(args: &PlanArgs) -> u8 {
    if args.json {
        stream::start();
    }
    let Some(read) = session::read(&args.vars) else { return ERROR };
    let Prepared { conf, session, store, prefetched } = match prepare(args, read).await {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    // The process ends after the plan: freeing a configuration of thousands of resources (and
    // the plan made from it) takes longer than the system takes to reclaim the memory.
    let mut conf = std::mem::ManuallyDrop::new(conf);
    let code = match generate_config(args, &conf, &session, &store).await {
        Ok(false) => plan_with(args, &conf, &session, &store, prefetched).await,
        // The configuration now holds the generated blocks: plan it.
        Ok(true) => match session::load(&args.vars) {
            Some(reloaded) => {
                *conf = reloaded;
                plan_with(args, &conf, &session, &store, None).await
            }
            None => ERROR,
        },
        Err(code) => code,
    };
    session.close().await;
    code
}

/// A checked configuration, connected to its tenant, with the store of its state.
struct Prepared {
    conf: crate::evaluate::Configuration,
    session: session::Session,
    store: crate::state::Store,
    prefetched: Option<session::Prefetched>,
}

/// Checks the configuration, connects and opens the state. A plan that is neither saved nor
/// of another kind connects as soon as the configuration is read, and reads the state and the
/// tenant on one core while the configuration is checked on the other; a saved plan reads
/// them under the lock it takes, and a plan with `--refresh=false` reads nothing of the
/// tenant.
async fn prepare(args: &PlanArgs, read: crate::evaluate::Read) -> Result<Prepared, u8> {
    let ahead = !read.has_errors()
        && args.out.is_none()
        && !args.refresh_only
        && args.generate_config_out.is_none()
        && args.targeting.refresh;
    if !ahead {
        let conf = session::check(read, true).ok_or(ERROR)?;
        let (session, store) = connect(args, &conf.module, &conf.variables, &conf.workspace).await?;
        return Ok(Prepared { conf, session, store, prefetched: None });
    }
    let (session, store) = match connect(args, &read.module, &read.variables, &read.workspace).await {
        Ok(pair) => pair,
        Err(code) => {
            // The configuration's own problems are reported with the connection's.
            session::check(read, true);
            return Err(code);
        }
    };
    let types = session::configured_types(&read.module);
    let checking = tokio::task::spawn_blocking(move || session::check(read, true));
    let (checked, prefetched) = tokio::join!(checking, session::prefetch(&types, &session, &store));
    match checked.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
        Some(conf) => Ok(Prepared { conf, session, store, prefetched: Some(prefetched) }),
        None => {
            session.close().await;
            Err(ERROR)
        }
    }
}

/// Connects to the tenant that `module` and the flags name and opens the store of its state in
/// `workspace`.
async fn connect(
    args: &PlanArgs,
    module: &crate::config::Module,
    variables: &std::collections::BTreeMap<String, (crate::model::Value, bool)>,
    workspace: &str,
) -> Result<(session::Session, crate::state::Store), u8> {
    let session = session::connect(&args.connection, module, variables).await.ok_or(ERROR)?;
    let tenant = session.client.tenant().to_owned();
    match session::open_store(module, &args.connection.target, Some(tenant), workspace).await {
        Ok(store) => Ok((session, store)),
        Err(code) => {
            session.close().await;
            Err(code)
        }
    }
}

/// `--generate-config-out FILE`: writes resource blocks for the import targets that have
/// none, from the objects on the tenant. Returns whether it wrote any.
async fn generate_config(
    args: &PlanArgs,
    conf: &crate::evaluate::Configuration,
    session: &session::Session,
    store: &crate::state::Store,
) -> Result<bool, u8> {
    let Some(file) = &args.generate_config_out else { return Ok(false) };
    let (targets, diags) = crate::plan::import::targets(conf);
    if diags.has_errors() {
        super::diagnose(&conf.module.files, &diags);
        return Err(ERROR);
    }
    let missing: Vec<_> =
        targets.into_iter().filter(|t| !conf.module.resources.contains_key(&t.address.config_block())).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    if file.exists() {
        return Err(fail(
            &format!("`{}` exists already", file.display()),
            Some("name a new file: generated configuration never replaces a file"),
        ));
    }
    if let Some(t) = missing.iter().find(|t| t.address.key.is_some() || !t.address.module.is_empty()) {
        return Err(fail(
            &format!("a block for `{}` cannot be generated", t.address),
            Some("configuration is generated for root-module blocks without `count` or `for_each`; write that one yourself"),
        ));
    }
    let state = store.load().await.map_err(|e| fail(&e.to_string(), None))?;
    let (snapshot, _) = session::read_tenant(conf, session, &state, &missing).await.ok_or(ERROR)?;
    let pairs: Vec<_> = missing.iter().map(|t| (t.address.clone(), t.id.clone())).collect();
    let (text, files, secrets) = crate::adopt::export::generate(&snapshot, session.client.tenant(), &pairs)
        .map_err(|problems| fail(&problems.join("; "), None))?;
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let written = std::fs::write(file, text).and_then(|()| {
        for (rel, content) in &files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, content)?;
        }
        Ok(())
    });
    written.map_err(|e| fail(&format!("cannot write `{}`: {e}", file.display()), None))?;
    err(&format!("Wrote {} block(s) for import targets into `{}`; review them.\n", missing.len(), file.display()));
    if !secrets.is_empty() {
        err(&format!("The generated blocks need these secrets as variables: {}\n", secrets.join(", ")));
    }
    Ok(true)
}

async fn plan_with(
    args: &PlanArgs,
    conf: &crate::evaluate::Configuration,
    session: &session::Session,
    store: &crate::state::Store,
    prefetched: Option<session::Prefetched>,
) -> u8 {
    if args.refresh_only {
        if args.out.is_some() {
            return fail(
                "`--refresh-only` plans are not saved",
                Some("review it, then run `thoth apply --refresh-only`"),
            );
        }
        let Some((plan, _, _)) = session::make_refresh_plan(conf, session, store).await else { return ERROR };
        if stream::on() {
            stream::emit_all(render::stream::plan_events(&plan));
        }
        out(&match args.format {
            Format::Human => human(&plan),
            Format::Markdown => render::plan_markdown(&plan, render::MARKDOWN_LIMIT),
            Format::Json => render::plan_json(&plan),
        });
        return if args.detailed_exitcode && plan.has_changes() { CHANGES } else { OK };
    }
    // Saving a plan takes the lock, so that the plan is made from a state no apply is writing.
    let lock = match &args.out {
        Some(_) => match session::take_lock(store, "plan", &args.lock).await {
            Ok(lock) => lock,
            Err(code) => return code,
        },
        None => None,
    };
    let selection = match session::selection(conf, &args.targeting, &args.stages, args.destroy, args.rollback) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if !selection.targets.is_empty() && selection.stage.is_none() {
        err("warning: `--target` is in effect: the plan covers only the targets and what they depend on, and may leave the tenant unlike the configuration\n");
    }
    let planned = session::make_plan(conf, session, store, &selection, prefetched).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    let Some(planned) = planned else { return ERROR };
    let planned = std::mem::ManuallyDrop::new(planned);
    if let Some(file) = &args.out {
        let saved = PlanFile::new(
            conf,
            &planned.plan,
            &planned.state,
            &planned.journal_digest,
            &planned.snapshot,
            &selection,
            None,
        );
        if let Err(e) = saved.write(file) {
            return fail(&e, None);
        }
        err(&format!(
            "The plan is saved in `{}`; `thoth apply {}` applies exactly it.\n",
            file.display(),
            file.display()
        ));
    }
    let started = std::time::Instant::now();
    let text = match args.format {
        Format::Human => human(&planned.plan),
        Format::Markdown => {
            let marker = render::markdown_marker(&workdir::repository_path(), &planned.plan.tenant_id, &conf.workspace);
            let plan = render::plan_markdown(&planned.plan, render::MARKDOWN_LIMIT - marker.len());
            format!("{marker}{plan}")
        }
        Format::Json => render::plan_json(&planned.plan),
    };
    crate::phase::done(started, "plan rendered");
    out(&text);
    if stream::on() {
        stream::emit_all(render::stream::plan_events(&planned.plan));
    }
    if checks_failed(&planned.plan, args.fail_on_check) {
        return ERROR;
    }
    // What the gate does not understand does not pass it, unless that is asked for.
    let gate = if args.allow_unknown_impact { Impact::Loosens } else { Impact::Unknown };
    if args.deny_loosening && planned.plan.impact() >= gate {
        let mut offenders = Vec::new();
        for c in planned.plan.changes.iter().filter(|c| c.impact() >= gate) {
            let attrs: Vec<String> = c
                .attrs
                .iter()
                .filter(|a| a.impact >= gate)
                .map(|a| format!("{} ({})", a.name, a.impact.label()))
                .collect();
            offenders.push(if attrs.is_empty() {
                format!("  {} ({})\n", c.address, c.impact().label())
            } else {
                format!("  {}: {}\n", c.address, attrs.join(", "))
            });
        }
        err(&format!(
            "error: the plan loosens the tenant's security or changes what thoth cannot judge, and `--deny-loosening` was given:\n{}",
            offenders.concat()
        ));
        if !args.allow_unknown_impact {
            err("hint: `--allow-unknown-impact` lets changes of unknown impact pass\n");
        }
        LOOSENS
    } else if args.detailed_exitcode && planned.plan.has_changes() {
        CHANGES
    } else {
        OK
    }
}

/// Warns of each failed check block (the plan lists them too), and with `--fail-on-check`
/// says that the run fails because of them.
pub(super) fn checks_failed(plan: &crate::plan::Plan, fail_on_check: bool) -> bool {
    let failed: Vec<_> = plan.failed_checks().collect();
    if failed.is_empty() {
        return false;
    }
    if !stream::on() {
        for c in &failed {
            err(&format!("warning: {} failed: {}\n", render::check_name(c), c.messages.join("; ")));
        }
    }
    if fail_on_check {
        fail(
            &format!("{} check(s) failed, and `--fail-on-check` was given", failed.len()),
            Some("fix what the checks report, or run without `--fail-on-check` to treat them as warnings"),
        );
    }
    fail_on_check
}
