//! `thoth graph`: the dependency graph of the configuration's resource blocks, or of a saved
//! plan's changes, as DOT or Mermaid. Like `validate`, it needs no credentials.

use super::{err, fail, out, session, ERROR, OK};
use crate::cli::{GraphArgs, GraphFormat};
use crate::graph::View;
use crate::planfile::PlanFile;
use crate::render;

pub(super) fn run(args: &GraphArgs) -> u8 {
    let view = match &args.plan {
        Some(path) => match PlanFile::read(path) {
            Ok(saved) => View::of_plan(&saved.plan),
            Err(e) => return fail(&e, None),
        },
        None => {
            let Some(conf) = session::load_with(&args.vars, true) else { return ERROR };
            if !conf.graph.complete {
                err("error: the configuration has a dependency cycle\n");
                return ERROR;
            }
            View::of_config(&conf.graph)
        }
    };
    out(&match args.format {
        GraphFormat::Dot => render::graph_dot(&view),
        GraphFormat::Mermaid => render::graph_mermaid(&view),
    });
    OK
}
