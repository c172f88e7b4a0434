//! Refactoring without touching the tenant: `moved` blocks rename state entries before
//! planning, `removed` blocks with `destroy = false` forget objects instead of deleting
//! them, and a removal and a create that name the same remote object (the same upsert key or
//! client-chosen id) are one move.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, Shown};
use crate::config::Evaluator;
use crate::diag::{Diagnostic, Diagnostics};
use crate::evaluate::Configuration;
use crate::model::{Address, Span};
use crate::state::State;

/// The configuration's `moved` and `removed` blocks, their addresses read.
#[derive(Debug, Default)]
pub struct Declared {
    /// `from` → `to`, with the block.
    pub moves: Vec<(Address, Address, Span)>,
    /// What `removed` blocks forget (`destroy = false`): instances, or whole blocks.
    pub forget: BTreeSet<Address>,
}

impl Declared {
    /// Whether a removal of `address` only forgets it.
    pub fn forgets(&self, address: &Address) -> bool {
        self.forget.contains(address) || self.forget.contains(&address.block())
    }
}

/// Reads the `moved` and `removed` blocks.
pub fn declared(conf: &Configuration) -> (Declared, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut out = Declared::default();
    if conf.module.moves.is_empty() {
        return (out, diags);
    }
    let ev = Evaluator::new(&conf.module, conf.variables.clone());
    for decl in &conf.module.moves {
        let from = match ev.address_of(&decl.from) {
            Ok(a) => a,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        match &decl.to {
            Some(to_expr) => match ev.address_of(to_expr) {
                Ok(to) if to.type_name != from.type_name => diags.push(
                    Diagnostic::error(format!("`{from}` cannot move to `{to}`: a move keeps the resource type"))
                        .at(decl.span, "this move")
                        .help("to adopt the object under another type, remove it and import it"),
                ),
                Ok(to) if to.key.is_some() != from.key.is_some() && from.key.is_some() => diags.push(
                    Diagnostic::error(format!("`{from}` and `{to}` must both name instances, or both whole blocks"))
                        .at(decl.span, "this move"),
                ),
                Ok(to) => out.moves.push((from, to, decl.span)),
                Err(d) => diags.push(d),
            },
            None if !decl.destroy => {
                if conf.module.resources.contains_key(&from.config_block()) {
                    diags.push(
                        Diagnostic::error(format!("`{from}` is removed, but the configuration still declares it"))
                            .at(decl.span, "this removed block")
                            .help("remove its resource block too, or the `removed` block"),
                    );
                }
                out.forget.insert(from);
            }
            None => {}
        }
    }
    (out, diags)
}

/// Renames the state entries the `moved` blocks name; returns the new address of each moved
/// entry with its old one. A move whose source the state does not have is skipped (it was
/// applied already); one onto an address the state has is an error.
pub fn apply(declared: &Declared, state: &mut State) -> Result<BTreeMap<Address, Address>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut moved = BTreeMap::new();
    for (from, to, span) in &declared.moves {
        // A whole block moves every instance, keeping its key.
        let sources: Vec<Address> = if from.key.is_some() {
            state.resources.contains_key(from).then(|| from.clone()).into_iter().collect()
        } else {
            state.resources.keys().filter(|a| a.block() == *from).cloned().collect()
        };
        for source in sources {
            let target = if from.key.is_some() { to.clone() } else { to.with_key(source.key.clone()) };
            if state.resources.contains_key(&target) {
                diags.push(
                    Diagnostic::error(format!(
                        "`{source}` cannot move to `{target}`: the state has `{target}` already"
                    ))
                    .at(*span, "this move")
                    .help("remove one of them from the state first (`thoth state rm`)"),
                );
                continue;
            }
            if let Some(entry) = state.resources.remove(&source) {
                state.resources.insert(target.clone(), entry);
                moved.insert(target, source);
            }
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(moved)
    }
}

/// The creates that name an object a removal in the same plan holds (the same type and
/// remote id): a block renamed without a `moved` block. Returns the new address with the old.
pub fn implicit(changes: &[Change]) -> Vec<(Address, Address)> {
    let removed: BTreeMap<(&str, &str), &Address> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Forget) && c.prior.is_some())
        .filter_map(|c| Some(((c.address.type_name.as_str(), c.prior_id.as_deref()?), &c.address)))
        .collect();
    changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .filter_map(|c| match &c.id_after {
            Shown::Value(v) => {
                let old = removed.get(&(c.address.type_name.as_str(), v.as_str()?))?;
                Some((c.address.clone(), (*old).clone()))
            }
            _ => None,
        })
        .collect()
}
