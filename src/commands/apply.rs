//! `thoth apply [FILE]`: plan, confirm (or check the saved plan), execute, record outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::progress::Progress;
use super::session::{self, human, ClientReader, Planned, Session};
use super::{err, fail, out, stream, ERROR, OK};
use crate::apply;
use crate::cli::ApplyArgs;
use crate::config::{CheckKind, CheckStatus};
use crate::evaluate::{self, Configuration, Reevaluate};
use crate::model::{Address, Value};
use crate::plan::Plan;
use crate::planfile::PlanFile;
use crate::render;
use crate::state::{State, Store};
use crate::vecmap::VecMap;

/// What an apply run does: the configuration, a destroy, or the rollback of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Apply,
    Destroy,
    Rollback,
}

pub(super) async fn run(args: &ApplyArgs, mode: Mode) -> u8 {
    if args.json {
        stream::start();
        if !args.auto_approve && args.plan_file.is_none() {
            return fail(
                "`--json` needs `--auto-approve` or a saved plan: there is no prompt to answer",
                Some("review the plan with `thoth plan --out FILE`, then `thoth apply --json FILE`"),
            );
        }
    }
    let Some(conf) = session::load(&args.vars) else { return ERROR };
    let Some(session) = session::connect(&args.connection, &conf.module, &conf.variables).await else { return ERROR };
    session::locked(&conf, session, &args.connection.target, "apply", &args.lock, async |session, store| {
        apply_with(args, &conf, session, store, mode).await
    })
    .await
}

/// `apply --refresh-only`: what changed on the tenant outside thoth goes into the state.
async fn refresh_only(args: &ApplyArgs, conf: &Configuration, session: &Session, store: &Store) -> u8 {
    if args.plan_file.is_some() {
        return fail("`--refresh-only` applies no saved plan", None);
    }
    let Some((plan, _, mut refreshed)) = session::make_refresh_plan(conf, session, store).await else { return ERROR };
    out(&human(&plan));
    if !plan.has_changes() {
        return OK;
    }
    if !args.auto_approve && !confirmed(&plan, args.input.input) {
        return ERROR;
    }
    match store.save(&mut refreshed).await {
        Ok(()) => {
            out("\nThe state records the tenant as it is; nothing was changed on the tenant.\n");
            OK
        }
        Err(e) => fail(&e.to_string(), None),
    }
}

async fn apply_with(args: &ApplyArgs, conf: &Configuration, session: &Session, store: &Store, mode: Mode) -> u8 {
    let destroy = mode == Mode::Destroy;
    if args.refresh_only {
        return refresh_only(args, conf, session, store).await;
    }
    let saved = match args.plan_file.as_deref().map(PlanFile::read).transpose() {
        Ok(saved) => saved,
        Err(e) => return fail(&e, None),
    };
    // A saved plan carries what it was made for.
    let selection = match &saved {
        Some(_)
            if !args.targeting.target.is_empty()
                || !args.targeting.replace.is_empty()
                || args.stages.stage.is_some()
                || mode != Mode::Apply =>
        {
            return fail(
                "a saved plan is applied as it was made",
                Some("give `--target`, `--replace`, `--stage`, `--rollback` and `--destroy` to `thoth plan --out`, not to apply"),
            );
        }
        Some(saved) => saved.selection(),
        None => match session::selection(conf, &args.targeting, &args.stages, destroy, mode == Mode::Rollback) {
            Ok(s) => s,
            Err(code) => return code,
        },
    };
    let Some(Planned { plan, mut state, snapshot, journaled, journal_digest }) =
        session::make_plan(conf, session, store, &selection, None).await
    else {
        return ERROR;
    };
    if let Some(saved) = &saved {
        let fresh =
            PlanFile::new(conf, &plan, &state, &journal_digest, &snapshot, &selection, Some(&saved.digest_salt));
        if let Err(why) = saved.check(&fresh) {
            return fail(
                &format!("the saved plan cannot be applied: {why}"),
                Some("run `thoth plan --out FILE` again and review the new plan"),
            );
        }
    }
    if let Some(why) = stage_refusal(conf, &plan, &selection, args.stages.all_stages) {
        out(&human(&plan));
        return fail(&why.0, Some(&why.1));
    }
    if let Some(refusal) =
        plan.mass_delete(state.resources.len(), args.mass_delete_percent).filter(|_| !args.allow_mass_delete)
    {
        out(&human(&plan));
        return fail(&refusal, Some("if this is intended, pass `--allow-mass-delete`"));
    }
    // What the journal held is recorded in the state before anything else happens.
    let journal = Arc::new(store.journal());
    if journaled {
        if let Err(e) = store.save(&mut state).await {
            return fail(&e.to_string(), None);
        }
        if let Err(e) = journal.compact(&BTreeSet::new()).await {
            return fail(&format!("cannot clear {}: {e}", journal.describe()), None);
        }
    }
    // Digests of an earlier scheme are replaced now, while the configured secrets are at hand.
    if apply::upgrade_digests(&plan, &mut state) > 0 {
        if let Err(e) = store.save(&mut state).await {
            return fail(&e.to_string(), None);
        }
    }
    out(&human(&plan));
    if stream::on() {
        stream::emit_all(render::stream::plan_events(&plan));
    }
    if super::plan::checks_failed(&plan, args.fail_on_check) {
        return ERROR;
    }
    if !plan.has_changes() {
        return finish(conf, session, &plan, &mut state, store, &BTreeMap::new(), args.fail_on_check).await;
    }
    // A saved plan was reviewed when it was made: applying it is the approval.
    if !args.auto_approve && saved.is_none() && !confirmed(&plan, args.input.input) {
        return ERROR;
    }
    out("\n");
    // A stage's apply is in its history, with what its objects were, before it starts.
    let staged = selection.stage.as_ref().filter(|s| !s.rollback);
    if let Some(stage) = staged {
        crate::plan::rollout::record_start(&mut state, stage, &plan.changes, &crate::state::now_rfc3339());
        if let Err(e) = store.save(&mut state).await {
            return fail(&e.to_string(), None);
        }
    }
    let reader = ClientReader(&session.client);
    let resolver = Reevaluate { conf, tenant: &plan.tenant_id, data: &reader };
    let options =
        apply::Options { parallelism: usize::from(args.parallelism), stop: Arc::new(AtomicBool::new(false)), journal };
    let watcher = tokio::spawn(stop_on_signal(options.stop.clone()));
    let mut progress = Progress::new(plan.changes.iter().filter(|c| c.action.writes()).count());
    let report =
        apply::execute(&plan, &session.client, &mut state, store, &resolver, &options, |event| progress.event(&event))
            .await;
    progress.finish();
    watcher.abort();
    out("\n");
    out(&render::apply_report(&report));
    if stream::on() {
        stream::emit(&render::stream::summary(&plan, "apply", Some(&report.steps)));
    }
    deliver_secrets(args, &report.revealed);
    if let Some(why) = &report.state_error {
        keep_errored(&state, store, why, report.state_conflict);
        return ERROR;
    }
    if report.failed() {
        return ERROR;
    }
    if let Some(stage) = staged {
        crate::plan::rollout::record_complete(&mut state, stage, &crate::state::now_rfc3339());
        if let Err(e) = store.save(&mut state).await {
            return fail(&e.to_string(), None);
        }
    }
    finish(conf, session, &plan, &mut state, store, &report.revealed, args.fail_on_check).await
}

/// Why this apply may not run as planned: a stage whose earlier stages are not done or whose
/// gate has not passed, or changes to stage objects without `--stage`. The message and its hint.
fn stage_refusal(
    conf: &Configuration,
    plan: &Plan,
    selection: &crate::plan::Selection,
    all_stages: bool,
) -> Option<(String, String)> {
    use crate::plan::rollout;
    match (&selection.stage, &plan.rollout) {
        (Some(stage), Some(view)) if !stage.rollback => {
            let decl = conf.module.rollouts.get(&stage.rollout)?;
            let index = decl.stages.iter().position(|s| s.name == stage.stage)?;
            let why = rollout::refusals(decl, index, &view.stages);
            (!why.is_empty()).then(|| {
                (
                    format!(
                        "stage `{}` of rollout `{}` cannot apply yet: {}",
                        stage.stage,
                        stage.rollout,
                        why.join("; ")
                    ),
                    "each stage applies after the one before it has applied the same changes and passed its gate"
                        .to_owned(),
                )
            })
        }
        (None, _) if !all_stages && !selection.destroy => {
            let staged = rollout::staged_writes(&conf.module, &plan.changes);
            let (address, rollout_name, stage) = staged.first()?;
            Some((
                format!(
                    "`{address}` belongs to stage `{stage}` of rollout `{rollout_name}`, and {} change(s) of this plan belong to rollout stages",
                    staged.len()
                ),
                format!("apply one stage at a time with `--stage {stage}`, or every stage at once with `--all-stages`"),
            ))
        }
        _ => None,
    }
}

/// The secrets the control plane returned once (a new API key's plaintext): written to
/// `--secrets-out` (mode 0600) and nowhere else, or said to be gone.
fn deliver_secrets(args: &ApplyArgs, revealed: &BTreeMap<Address, VecMap<String, Value>>) {
    if revealed.is_empty() {
        return;
    }
    let names: Vec<String> = revealed.iter().flat_map(|(a, v)| v.keys().map(move |k| format!("`{a}.{k}`"))).collect();
    let Some(path) = &args.secrets_out else {
        err(&format!(
            "note: the control plane returned {} once and thoth keeps it nowhere; pass `--secrets-out FILE` to receive it\n",
            names.join(", ")
        ));
        return;
    };
    let doc: serde_json::Map<String, serde_json::Value> = revealed
        .iter()
        .map(|(a, values)| {
            let inner: serde_json::Map<String, serde_json::Value> =
                values.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
            (a.to_string(), serde_json::Value::Object(inner))
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    match crate::state::write_atomic(path, text.as_bytes()) {
        Ok(()) => err(&format!(
            "The plaintext of {} is in `{}` (mode 0600); thoth keeps it nowhere else.\n",
            names.join(", "),
            path.display()
        )),
        Err(e) => err(&format!("error: cannot write `{}`: {e}; the secrets are lost\n", path.display())),
    }
}

/// The state of a run whose backend went away, written where the run is so that nothing
/// applied is lost; `thoth state push` puts it back.
pub(super) const ERRORED: &str = "errored.thoth.state.json";

fn keep_errored(state: &State, store: &Store, why: &str, conflict: bool) {
    let Some(serial) = state.serial.checked_add(1) else { return };
    if let Err(e) = crate::state::write_atomic(std::path::Path::new(ERRORED), &state.to_bytes(serial)) {
        err(&format!("error: the state could not be saved in {} ({why}), nor in `{ERRORED}`: {e}\n", store.describe()));
        return;
    }
    let hint = if conflict {
        format!("another run wrote the state meanwhile: compare it (`thoth state pull`) with `{ERRORED}`, push the right one (`thoth state push --force`), then run `thoth apply` again")
    } else {
        format!("once the backend answers again, run `thoth state push {ERRORED}`, then `thoth apply` again")
    };
    err(&format!(
        "error: the state could not be saved in {}: {why}\nWhat this run applied is in `{ERRORED}` (it holds no secret).\nhint: {hint}\n",
        store.describe()
    ));
}

/// Asks for `yes` on the terminal; false (with the reason printed) otherwise.
fn confirmed(plan: &Plan, input: bool) -> bool {
    if !input {
        fail(
            "apply needs confirmation, and `--input=false` was given",
            Some("review the plan, then pass `--auto-approve`"),
        );
        return false;
    }
    if !std::io::stdin().is_terminal() {
        fail(
            "apply needs confirmation, and standard input is not a terminal",
            Some("review the plan, then pass `--auto-approve`"),
        );
        return false;
    }
    out(&format!(
        "\nDo you want to perform these actions on tenant `{}`?\nOnly `yes` will be accepted.\n\n  Enter a value: ",
        plan.tenant_id
    ));
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
        out("\nApply cancelled.\n");
        return false;
    }
    true
}

/// Sets `stop` on SIGINT or SIGTERM: apply then lets the calls in flight finish, saves the
/// state and starts nothing new.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = interrupt.await;
            stop.store(true, Ordering::SeqCst);
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    err("\ninterrupted: letting the calls in flight finish and saving the state; nothing new starts\n");
    stop.store(true, Ordering::SeqCst);
}

/// Evaluates outputs, checks and conditions from the state as applied, prints them, and
/// records the non-sensitive outputs in the state. A failed postcondition fails the run; a
/// failed check block only with `--fail-on-check`.
async fn finish(
    conf: &Configuration,
    session: &Session,
    plan: &Plan,
    state: &mut State,
    store: &Store,
    revealed: &BTreeMap<Address, VecMap<String, Value>>,
    fail_on_check: bool,
) -> u8 {
    if conf.module.root().outputs.is_empty() && !conf.module.has_conditions() {
        return OK;
    }
    // Outputs show the tenant as the apply left it: data sources are read once more.
    session.client.forget_data_reads();
    let (outputs, checks, mut diags) =
        evaluate::applied_outputs(conf, plan, state, revealed, &ClientReader(&session.client));
    for c in checks.iter().filter(|c| c.status == CheckStatus::Fail && c.kind != CheckKind::Check) {
        diags.push(crate::plan::condition_failed(c));
    }
    if !diags.is_empty() {
        super::diagnose(&conf.module.files, &diags);
    }
    if !checks.is_empty() {
        out(&format!("\n{}", render::checks(&checks)));
    }
    out(&render::outputs(&outputs));
    if stream::on() {
        stream::emit_all(checks.iter().map(render::stream::check_event));
        stream::emit(&render::stream::outputs(&outputs));
    }
    let failed_checks: Vec<_> =
        checks.iter().filter(|c| c.status == CheckStatus::Fail && c.kind == CheckKind::Check).collect();
    if !failed_checks.is_empty() && !stream::on() {
        for c in &failed_checks {
            err(&format!("warning: {} failed after apply: {}\n", c.address, c.messages.join("; ")));
        }
    }
    let recorded: BTreeMap<String, serde_json::Value> =
        outputs.iter().filter(|(_, v, s)| !s && v.is_known()).map(|(n, v, _)| (n.clone(), v.to_json())).collect();
    if recorded != state.outputs {
        state.outputs = recorded;
        if let Err(e) = store.save(state).await {
            return fail(&e.to_string(), None);
        }
    }
    if diags.has_errors() {
        return ERROR;
    }
    if fail_on_check && !failed_checks.is_empty() {
        return fail(
            &format!("{} check(s) failed after apply, and `--fail-on-check` was given", failed_checks.len()),
            None,
        );
    }
    OK
}
