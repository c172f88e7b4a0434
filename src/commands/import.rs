//! `thoth import ADDR ID`: bring one object the tenant has under management, into the state
//! only: the tenant is not touched, and the next plan shows what the configuration changes.

use super::session::{self, human};
use super::{fail, out, ERROR, OK};
use crate::cli::ImportArgs;
use crate::model::Address;

pub(super) async fn run(args: &ImportArgs) -> u8 {
    let Some(address) = Address::parse(&args.address) else {
        return fail(
            &format!("`{}` is not a resource address", args.address),
            Some("write it as `thoth_fleet.claims`, `thoth_fleet.ring[\"eu\"]` or `module.tenant.thoth_fleet.ring`"),
        );
    };
    let Some(conf) = session::load(&args.vars) else { return ERROR };
    if !conf.module.resources.contains_key(&address.config_block()) {
        return fail(
            &format!("`{address}` has no resource block in the configuration"),
            Some(&format!(
                "write `resource \"{}\" \"{}\" {{ ... }}` first, or use an `import` block with `thoth plan --generate-config-out FILE`",
                address.type_name, address.name
            )),
        );
    }
    let Some(session) = session::connect(&args.connection, &conf.module, &conf.variables).await else { return ERROR };
    session::locked(&conf, session, &args.connection.target, "import", &args.lock, async |session, store| {
        let target = crate::plan::import::cli_target(&conf, address.clone(), args.id.clone());
        import_one(&conf, session, store, target).await
    })
    .await
}

async fn import_one(
    conf: &crate::evaluate::Configuration,
    session: &session::Session,
    store: &crate::state::Store,
    target: crate::plan::import::Target,
) -> u8 {
    let address = target.address.clone();
    let id = target.id.clone();
    let stored = match store.load().await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), None),
    };
    if let Some(entry) = stored.resources.get(&address) {
        return fail(
            &format!("`{address}` is already managed (as `{}`)", entry.id),
            Some("`thoth state rm` it first to import another object in its place"),
        );
    }
    let Some(planned) =
        session::make_plan_importing(conf, session, store, Some(vec![target]), &Default::default(), None).await
    else {
        return ERROR;
    };
    let Some(change) = planned.plan.changes.iter().find(|c| c.address == address && c.import.is_some()) else {
        return fail(&format!("`{address}` was not imported"), None);
    };
    // The state gets the imported object only; anything else the plan would change waits for
    // a reviewed apply.
    let mut state = match store.load().await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), None),
    };
    if let Err(e) = store.journal().replay(&mut state).await {
        return fail(&e.to_string(), None);
    }
    let entry = change.prior.clone().or_else(|| planned.state.resources.get(&address).cloned());
    let Some(entry) = entry else { return fail(&format!("`{address}` was not imported"), None) };
    state.tenant_id = Some(planned.plan.tenant_id.clone());
    state.resources.insert(address.clone(), entry);
    if let Err(e) = store.save(&mut state).await {
        return fail(&e.to_string(), None);
    }
    if let Err(e) = store.journal().compact(&std::collections::BTreeSet::new()).await {
        return fail(&e.to_string(), None);
    }
    out(&format!("Imported `{address}` from `{id}`; the tenant was not changed.\n"));
    if change.action == crate::plan::Action::NoOp {
        out("It matches the configuration.\n");
    } else {
        let only =
            crate::plan::Plan { changes: vec![change.clone()], unmanaged: Default::default(), ..planned.plan.clone() };
        out(&format!("The next apply will change it:\n\n{}", human(&only)));
    }
    OK
}
