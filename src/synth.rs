//! Synthetic tenants for benchmarks and scale tests: `n` schema-valid resources spread over the
//! types large enterprises declare by the thousand (endpoints, MCP vendors, pack assignments,
//! browser enrollments, fleets, bundles and browser policies), with references between them,
//! variables, locals and policy heredocs.
//!
//! Two shapes: [`Shape::Light`], a few attributes per resource, and [`Shape::Real`], what real
//! tenants hold: eight to twelve attributes per resource, nested objects through `jsonencode`
//! in every JSON attribute, Rego and Cedar heredocs and templates in every bundle, browser
//! policies of dozens of keys merged from a file, pack assignments with JSON and individual
//! overrides, and sensitive variables and locals.
//!
//! The output is deterministic for a given `n` and shape. Applying it to an emulator populates the
//! matching remote objects, after which a plan of the same files is a no-op plan with state
//! and remote both populated.

use std::fmt::Write as _;
use std::path::Path;

mod real;

/// The packs of the emulator's catalogue an agent can be assigned.
const PACKS: [&str; 7] = [
    "cis-l1",
    "eu-ai-act",
    "fedramp-moderate",
    "gdpr-ai-agents",
    "hipaa-minimum-necessary",
    "nist-ai-rmf",
    "soc2-type2",
];

/// Which kind of synthetic tenant to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A few attributes per resource and short values.
    Light,
    /// Attributes, documents and files as real tenants hold them.
    Real,
}

/// The configuration files of a synthetic tenant of about `n` resources, by relative path.
pub fn tenant(n: usize, shape: Shape) -> Vec<(String, String)> {
    match shape {
        Shape::Light => light(n),
        Shape::Real => real::tenant(n),
    }
}

fn light(n: usize) -> Vec<(String, String)> {
    let mut files = Vec::new();
    files.push((
        "main.tf".to_owned(),
        r#"# A synthetic tenant, generated for benchmarks.

variable "environment" {
  type    = string
  default = "prod"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

locals {
  owner         = "platform-security"
  allowed_hosts = ["api.figma.com", "api.notion.com", "api.github.com"]
}

resource "thoth_governance_settings" "baseline" {
  compliance_profile                 = "soc2"
  shadow_low                         = "allow"
  shadow_medium                      = "step_up"
  shadow_high                        = "block"
  shadow_critical                    = "block"
  secret_broker_enabled              = true
  secret_broker_strict_endpoint_mode = true
  secret_broker_allowed_hosts        = local.allowed_hosts
}

resource "thoth_browser_provider" "chrome" {
  provider_name = "chrome"
  name          = "Chrome Enterprise"
  config_json   = jsonencode({ customer_id = "C0synthetic", owner = local.owner })
}

resource "thoth_fleet" "f0" {
  name   = "fleet-0"
  region = var.region
}
"#
        .to_owned(),
    ));
    let [fleets, bundles, policies, vendors, packs, enrollments, endpoints] = split(n);

    let mut text = String::new();
    for i in 1..fleets {
        let _ = write!(
            text,
            "resource \"thoth_fleet\" \"f{i}\" {{\n  name             = \"fleet-{i}\"\n  region           = var.region\n  rollout_strategy = \"staged\"\n  rollout_pct      = {}\n}}\n\n",
            10 + i % 90
        );
    }
    for i in 0..endpoints {
        let _ = write!(
            text,
            "resource \"thoth_endpoint\" \"e{i}\" {{\n  endpoint_id   = \"ep-{i:06}\"\n  hostname      = \"host-{i:06}.corp.example\"\n  department    = \"dept-{}\"\n  os            = \"{}\"\n  environment   = var.environment\n  fleet_id      = thoth_fleet.f{}.fleet_id\n}}\n\n",
            i % 40,
            ["macos", "windows", "linux"][i % 3],
            i % fleets
        );
    }
    files.push(("fleets_endpoints.tf".to_owned(), std::mem::take(&mut text)));

    for i in 0..bundles {
        let _ = write!(
            text,
            "resource \"thoth_policy_bundle\" \"b{i}\" {{\n  name             = \"bundle-{i}\"\n  framework        = \"OPA\"\n  assignments      = [\"all\"]\n  enforcement_mode = \"enforce\"\n  raw_policy       = <<-EOT\n    package thoth.synthetic.b{i}\n\n    import rego.v1\n\n    default allow := false\n\n    allow if {{\n      input.request.host in {{\"api.figma.com\", \"api.notion.com\"}}\n      input.agent.risk < {}\n    }}\n  EOT\n}}\n\n",
            50 + i % 50
        );
    }
    for i in 0..policies {
        let _ = write!(
            text,
            "resource \"thoth_browser_policy\" \"p{i}\" {{\n  name             = \"browser-policy-{i}\"\n  provider_name    = thoth_browser_provider.chrome.provider_name\n  enforcement_mode = \"enforce\"\n  policy_json      = jsonencode({{ blocked_ai_domains = [\"ai-{i}.example\"], owner = local.owner }})\n}}\n\n"
        );
    }
    files.push(("policies.tf".to_owned(), std::mem::take(&mut text)));

    for i in 0..vendors {
        let _ = write!(
            text,
            "resource \"thoth_mcp_vendor\" \"v{i}\" {{\n  vendor_id     = \"vendor-{i:05}\"\n  display_name  = \"Vendor {i}\"\n  host_patterns = [\"api.vendor-{i}.example\", \"*.vendor-{i}.example\"]\n  approved      = {}\n  source        = \"manual\"\n}}\n\n",
            i % 4 != 0
        );
    }
    for i in 0..packs {
        let _ = write!(
            text,
            "resource \"thoth_pack_assignment\" \"a{i}\" {{\n  agent_id    = \"agent-{:05}\"\n  pack_id     = \"{}\"\n  environment = var.environment\n}}\n\n",
            i / PACKS.len(),
            PACKS[i % PACKS.len()]
        );
    }
    for i in 0..enrollments {
        let _ = write!(
            text,
            "resource \"thoth_browser_enrollment\" \"n{i}\" {{\n  provider_name = thoth_browser_provider.chrome.provider_name\n  user_id       = \"user-{i}@corp.example\"\n  device_id     = \"device-{i:06}\"\n  status        = \"active\"\n}}\n\n"
        );
    }
    files.push(("agents.tf".to_owned(), text));
    files
}

/// The number of resources of each kind in a tenant of `n`: fleets (2 %, at least one),
/// bundles (3 %), browser policies (3 %), MCP vendors (22 %), pack assignments (25 %),
/// enrollments (15 %) and endpoints (the rest). Three resources are always there and counted:
/// the settings, the browser provider and the first fleet.
fn split(n: usize) -> [usize; 7] {
    let share = |percent: usize| n * percent / 100;
    let fleets = share(2).max(1);
    let [bundles, policies, vendors, packs, enrollments] = [3, 3, 22, 25, 15].map(share);
    let endpoints = n.saturating_sub(3 + (fleets - 1) + bundles + policies + vendors + packs + enrollments);
    [fleets, bundles, policies, vendors, packs, enrollments, endpoints]
}

/// Writes the files of a synthetic tenant of about `n` resources into `dir`.
pub fn write_tenant(dir: &Path, n: usize, shape: Shape) -> std::io::Result<()> {
    for (name, text) in tenant(n, shape) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of resource blocks a tenant generated for `n` declares.
    fn resource_count(n: usize, shape: Shape) -> usize {
        tenant(n, shape)
            .iter()
            .map(|(_, text)| text.matches("\nresource \"").count() + usize::from(text.starts_with("resource")))
            .sum()
    }

    #[test]
    fn a_synthetic_tenant_has_the_requested_size_and_is_deterministic() {
        for n in [10, 100, 1000] {
            assert_eq!(resource_count(n, Shape::Light), n.max(3), "n = {n}");
            assert_eq!(resource_count(n, Shape::Real), n, "n = {n}");
        }
        assert_eq!(tenant(500, Shape::Light), tenant(500, Shape::Light));
        assert_eq!(tenant(500, Shape::Real), tenant(500, Shape::Real));
    }

    /// Large configurations are parsed a file per thread and their references found on two
    /// threads; the module and graph must be what a walk of every block finds.
    #[test]
    fn a_large_tenant_loads_and_graphs_as_a_walk_of_every_block_does() {
        use crate::config::Node;
        use std::collections::BTreeSet;

        let dir = std::env::temp_dir().join(format!("thoth-synth-graph-{}", std::process::id()));
        write_tenant(&dir, 2_000, Shape::Light).expect("write the tenant");
        let (module, diags) = crate::config::load(&dir, "");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(module.resources.len(), 2_000);
        assert_eq!(
            module.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["agents.tf", "fleets_endpoints.tf", "main.tf", "policies.tf"]
        );
        let (graph, diags) = crate::graph::build(&module);
        assert!(diags.is_empty(), "{diags:?}");
        let position = |node: &Node| graph.order.iter().position(|n| n == node).expect("ordered");
        let mut referenced = crate::model::NameSet::default();
        for address in module.resources.keys() {
            let node = Node::Resource(address.clone());
            let walked: BTreeSet<_> = module
                .node_exprs(&node)
                .into_iter()
                .flat_map(|e| crate::config::references(&module, e))
                .filter_map(|(n, _)| match n {
                    Node::Resource(a) => Some(a),
                    _ => None,
                })
                .collect();
            assert_eq!(graph.resource_deps[address], walked, "{address}");
            for dep in &walked {
                assert!(position(&Node::Resource(dep.clone())) < position(&node), "{dep} before {address}");
            }
            referenced.extend(walked);
        }
        assert_eq!(graph.referenced, referenced);
        assert!(graph.referenced.len() > 10, "the tenant has references");
    }
}
