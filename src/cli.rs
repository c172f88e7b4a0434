//! Command-line definitions and connection settings resolved from flags, the
//! `provider "thoth"` block and the environment, in that order of precedence.
//!
//! This module holds no business logic: `commands` does the work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use std::ffi::OsString;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::config::{Evaluator, ProviderDecl};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::{format_number, Value};
use crate::remote::{Auth, Connection, Retry};

#[derive(Debug, Parser)]
#[command(name = "thoth", version, about = "Manage a whole Thoth tenant as code", long_about = None)]
pub struct Cli {
    /// Switch to this directory before doing anything else; the configuration is read from it.
    #[arg(long, global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Never print colour, even on a terminal (as `NO_COLOR` does).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration without contacting the control plane.
    Validate(VarArgs),
    /// Show what apply would change on the tenant.
    Plan(PlanArgs),
    /// Make the tenant match the configuration, or apply a saved plan.
    Apply(ApplyArgs),
    /// Remove every object the state manages from the tenant (or those `--target` names and
    /// what depends on them), with every safety rail of apply.
    Destroy(ApplyArgs),
    /// Return the objects of a rollout stage (`--stage`) to what they were before its last
    /// apply, with every safety rail of apply (`thoth plan --rollback --stage S` shows it).
    Rollback(ApplyArgs),
    /// Print a saved plan.
    Show(ShowArgs),
    /// Serve the GovAPI contract locally, for tests and trials.
    Emulator(EmulatorArgs),
    /// Remove a state lock left behind, by its id.
    ForceUnlock(ForceUnlockArgs),
    /// Prepare the backend (creating its schema or checking its bucket), and move the state
    /// between backends.
    Init(InitArgs),
    /// Read or replace the stored state.
    #[command(subcommand)]
    State(StateCommand),
    /// Bring an object the tenant has under management: into the state only, the tenant untouched.
    Import(ImportArgs),
    /// Write the tenant as a configuration directory that imports everything it holds.
    Export(ExportArgs),
    /// Print the outputs recorded by the last apply (sensitive ones are never recorded).
    Output(OutputArgs),
    /// Turn another tool's state into thoth's.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// List, create, select and delete workspaces: one state per workspace, in every backend.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Rewrite configuration files in Terraform's canonical layout.
    Fmt(FmtArgs),
    /// Print the dependency graph of the configuration, or of a saved plan with its actions.
    Graph(GraphArgs),
    /// Browser governance on the endpoint.
    #[command(subcommand)]
    Browser(BrowserCommand),
    /// Run the operations guide's verification checklist and evidence checks against the
    /// tenant: exit 0 when everything passes, 4 when an item fails, 1 on error.
    Verify(VerifyArgs),
    /// Print the version of thoth and of the formats it reads and writes.
    Version(VersionArgs),
    /// Print a shell completion script (`source <(thoth completions bash)`).
    Completions(CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum BrowserCommand {
    /// Make the browser's managed-policy file on this device match what GovAPI says it must
    /// enforce (`--dry-run` shows the diff and changes nothing).
    Sync(BrowserSyncArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BrowserSyncArgs {
    /// The device, as its browser enrollment names it.
    #[arg(long, value_name = "ID")]
    pub device_id: String,
    /// The user of the device, as the enrollment names them.
    #[arg(long, value_name = "USER")]
    pub user_id: String,
    #[arg(long, value_enum, default_value_t = crate::browser::Browser::Chrome)]
    pub browser: crate::browser::Browser,
    /// Print what would change in the file, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the file into this directory instead of the browser's own.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// The layout to write (the current system's by default).
    #[arg(long, value_enum)]
    pub platform: Option<crate::browser::Platform>,
    /// Replace a file thoth did not write, or that was changed by hand since (it is kept as
    /// the backup).
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// How to print the report: `human` (default), `markdown` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Run only this group (repeatable): settings, mdm, endpoints, health, webhook, evidence,
    /// checks.
    #[arg(long, value_name = "GROUP")]
    pub only: Vec<String>,
    /// Leave this group out (repeatable).
    #[arg(long, value_name = "GROUP")]
    pub skip: Vec<String>,
    /// The trailing window of the evidence SLOs, in hours (default 24).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub window_hours: Option<u32>,
    /// The window of the decision backfill dry run, in hours (default 720).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub decision_window_hours: Option<u32>,
    /// An endpoint not seen for longer is stale (default 24h).
    #[arg(long, value_name = "DURATION", value_parser = crate::state::lock::parse_duration)]
    pub stale_after: Option<std::time::Duration>,
    /// At least this many endpoints are enrolled (default 1).
    #[arg(long, value_name = "N")]
    pub min_endpoints: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct VersionArgs {
    /// Print the versions as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// `bash`, `zsh`, `fish`, `powershell` or `elvish`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write `thoth.1` and a `thoth-COMMAND.1` page for every command into this directory
    /// instead of printing `thoth.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct GraphArgs {
    /// `dot` for Graphviz, or `mermaid` to paste into a pull request.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Draw the changes of this saved plan (from `thoth plan --out`) instead of the
    /// configuration's resource blocks.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Args, Clone)]
pub struct FmtArgs {
    /// Files or directories to format (the working directory when none); `-` formats
    /// standard input to standard output.
    pub paths: Vec<PathBuf>,
    /// Change nothing; exit 3 when a file is not in canonical layout.
    #[arg(long)]
    pub check: bool,
    /// Print the changes as a unified diff.
    #[arg(long)]
    pub diff: bool,
    /// Descend into subdirectories (hidden ones excepted).
    #[arg(long)]
    pub recursive: bool,
    /// Write the formatted files (`--write=false` leaves them as they are).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub write: bool,
    /// List the files whose layout changes (`--list=false` to keep quiet).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub list: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Read a Terraform state (format version 4) written with the `atensecurity/thoth`
    /// provider into the configuration's state.
    Terraform(MigrateArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    /// The Terraform state file (`terraform.tfstate`, or `terraform state pull > FILE`).
    pub path: PathBuf,
    /// Replace a state that already holds objects.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// The directory to write (it must be new or empty).
    #[arg(long, value_name = "DIR", default_value = "thoth-export")]
    pub out: PathBuf,
    /// Export only objects of this type (`thoth_fleet` or `fleet`; repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Where the object goes: the address of its resource block, with the instance key.
    pub address: String,
    /// The id the Terraform provider imports it by (`agent_id/pack_id`, `slug`, a server id).
    pub id: String,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// List the workspaces, marking the selected one.
    List(StateArgs),
    /// Print the selected workspace.
    Show,
    /// Create a workspace and select it.
    New(WorkspaceArgs),
    /// Select a workspace.
    Select(SelectArgs),
    /// Delete a workspace whose state manages nothing (or anything, with `--force`).
    Delete(DeleteWorkspaceArgs),
}

#[derive(Debug, Args, Clone)]
pub struct WorkspaceArgs {
    pub name: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SelectArgs {
    pub name: String,
    /// Create the workspace when it does not exist.
    #[arg(long)]
    pub or_create: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteWorkspaceArgs {
    pub name: String,
    /// Delete it even when its state still manages objects (they stay on the tenant, unmanaged).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// A plan file written by `thoth plan --out`.
    pub file: PathBuf,
    /// How to print the plan: `human` (default), `markdown` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args, Clone)]
pub struct ForceUnlockArgs {
    /// The lock id, as shown by the command that found the state locked.
    pub id: String,
    #[command(flatten)]
    pub state: StateArgs,
}

/// What a command that reads or writes the state without contacting the control plane needs:
/// which state, and the variables the provider block's `tenant_id` may use.
#[derive(Debug, Args, Clone, Default)]
pub struct StateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Move the state from the backend used before (recorded by the last `init`, or the local
    /// state file) into the configured one.
    #[arg(long)]
    pub migrate_state: bool,
    /// With `--migrate-state`: overwrite a state of another lineage in the configured backend.
    #[arg(long)]
    pub force_copy: bool,
    /// Use the configured backend from now on without moving any state into it.
    #[arg(long)]
    pub reconfigure: bool,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the state as stored, with what its journal holds.
    Pull(StateArgs),
    /// Replace the stored state with a state file, checking its lineage and serial.
    Push(PushArgs),
    /// List the addresses the state tracks (those under the given addresses).
    List(StateListArgs),
    /// Show what the state records of one object (secrets only as `(sensitive value)`).
    Show(StateShowArgs),
    /// Rename an address in the state; the tenant is not touched.
    Mv(StateMvArgs),
    /// Stop tracking objects: they stay on the tenant as they are.
    Rm(StateRmArgs),
}

#[derive(Debug, Args, Clone)]
pub struct StateListArgs {
    /// Addresses (instances, blocks or modules) to list under; everything when none.
    pub addresses: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StateShowArgs {
    pub address: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StateMvArgs {
    /// The address in the state now (an instance, or a whole block).
    pub source: String,
    /// The address it gets.
    pub destination: String,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StateRmArgs {
    /// The addresses (instances or whole blocks) to forget.
    #[arg(required = true)]
    pub addresses: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// One output; all of them when none.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print one string output's value as is, without quotes.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args, Clone)]
pub struct PushArgs {
    /// A state file, such as `errored.thoth.state.json` or one written by `thoth state pull`.
    pub file: PathBuf,
    /// Push even when the lineage differs or the serial is older than the stored one.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: `--var NAME=VALUE` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file of `name = value` lines, or a JSON object (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Run a Terraform Stack's deployment: its components with that deployment's inputs, in a
    /// state of its own (the deployment's name is the workspace).
    #[arg(long, value_name = "NAME")]
    pub deployment: Option<String>,
}

/// Which tenant and which state a command is about.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// The tenant id (overrides the provider block and THOTH_TENANT_ID).
    #[arg(long, value_name = "ID")]
    pub tenant_id: Option<String>,
    /// Use a local emulated control plane instead of a real tenant (data under `.thoth/embedded/`).
    #[arg(long)]
    pub embedded: bool,
    /// The state file of the local backend (default `thoth.state.json` in the configuration
    /// directory).
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The apex domain of the control plane host (default `atensecurity.com`).
    #[arg(long, value_name = "DOMAIN")]
    pub apex_domain: Option<String>,
    /// The control plane base URL, used as-is instead of `https://grid.<tenant>.<apex>`.
    #[arg(long, value_name = "URL")]
    pub api_base_url: Option<String>,
    /// A file holding an org API key.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A file holding an admin bearer token.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Say how many HTTP calls reading the tenant took, and how long.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PlanArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Exit with 2 when there are changes, 0 when there are none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How to print the plan: `human` (default), `markdown` (a pull-request comment) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit with 3 when any change loosens the tenant's security, or has an impact thoth
    /// cannot judge (see `--allow-unknown-impact`).
    #[arg(long)]
    pub deny_loosening: bool,
    /// With `--deny-loosening`, let changes of unknown security impact pass.
    #[arg(long, requires = "deny_loosening")]
    pub allow_unknown_impact: bool,
    /// Show only what changed on the tenant outside thoth, which `apply --refresh-only`
    /// records in the state; nothing is planned for the tenant.
    #[arg(long)]
    pub refresh_only: bool,
    /// Plan the removal of every object the state manages (what `thoth destroy` applies).
    #[arg(long)]
    pub destroy: bool,
    #[command(flatten)]
    pub targeting: TargetingArgs,
    /// Save the plan to this file, for `thoth apply FILE` to apply exactly it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Write resource blocks for the `import` blocks that have none into this new file (with
    /// the files they read beside it), then plan with them.
    #[arg(long, value_name = "FILE")]
    pub generate_config_out: Option<PathBuf>,
    /// Print a machine-readable stream instead of text: one JSON object per line, as
    /// `schemas/events.schema.json` describes.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    #[command(flatten)]
    pub stages: RolloutArgs,
    /// Plan the rollback of `--stage`: its objects back to what they were before its last
    /// apply (what `thoth rollback` applies).
    #[arg(long, requires = "stage")]
    pub rollback: bool,
    /// Fail (exit 1) when a `check` block fails, instead of warning.
    #[arg(long)]
    pub fail_on_check: bool,
}

/// `--stage` and its rollout.
#[derive(Debug, Args, Clone, Default)]
pub struct RolloutArgs {
    /// Plan or apply only this stage of the rollout: its targets and what they depend on;
    /// the changes of other stages are held.
    #[arg(long, value_name = "STAGE", conflicts_with = "target")]
    pub stage: Option<String>,
    /// The rollout `--stage` belongs to, when the configuration declares several.
    #[arg(long, value_name = "NAME", requires = "stage")]
    pub rollout: Option<String>,
    /// Apply changes to objects of rollout stages without `--stage`, every stage at once.
    #[arg(long, conflicts_with = "stage")]
    pub all_stages: bool,
}

/// `--target`, `--replace` and `--refresh`.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetingArgs {
    /// Plan only this object (an instance, a block or `module.NAME`) and what it depends on;
    /// for a destroy, it and what depends on it (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Replace this object even if nothing about it changed (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Read the tenant before planning (`--refresh=false` plans against the state as
    /// recorded: faster, blind to changes made outside thoth).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub refresh: bool,
}

/// Terraform's `-input`: whether a command may ask questions on the terminal.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// `--input=false`: never ask anything; what would need an answer fails instead (plan and
    /// init never ask).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub input: bool,
}

impl Default for InputArgs {
    fn default() -> Self {
        InputArgs { input: true }
    }
}

/// How a command that writes the state takes its lock.
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// `--lock=false`: do not take the state lock (only when nothing else can write the state).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub lock: bool,
    /// How long to wait for another run's state lock (`30s`, `2m`); by default fail at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::state::lock::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

impl Default for LockArgs {
    fn default() -> Self {
        LockArgs { lock: true, lock_timeout: std::time::Duration::ZERO }
    }
}

/// The output formats of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Markdown,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Record in the state what changed on the tenant outside thoth; nothing is written to
    /// the tenant.
    #[arg(long)]
    pub refresh_only: bool,
    #[command(flatten)]
    pub targeting: TargetingArgs,
    /// How many independent changes to apply at the same time (requests in flight are capped
    /// at 64).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Write the secrets the control plane returns once (a new API key's plaintext) to this
    /// file, created with mode 0600; they are never kept anywhere else.
    #[arg(long, value_name = "FILE")]
    pub secrets_out: Option<PathBuf>,
    /// Apply even when the plan deletes more than `--mass-delete-percent` of the managed objects.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// The share of the managed objects, in percent, above which deleting is a mass delete.
    #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub mass_delete_percent: u8,
    /// Print a machine-readable stream instead of text: one JSON object per line, as
    /// `schemas/events.schema.json` describes.
    #[arg(long)]
    pub json: bool,
    /// Refuse to apply when a `check` block fails with the planned values, and exit 1 when
    /// one fails after apply, instead of warning.
    #[arg(long)]
    pub fail_on_check: bool,
    #[command(flatten)]
    pub stages: RolloutArgs,
    /// A plan file written by `thoth plan --out`: apply exactly that plan, or refuse.
    pub plan_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on, such as `127.0.0.1:8080`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory keeping the emulated tenants' data across restarts.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// An accepted API key or bearer token (repeatable; at least one).
    #[arg(long = "api-key", value_name = "KEY", required = true)]
    pub api_keys: Vec<String>,
    /// Delay added to every API answer, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability (0 to 1) of answering 503 without doing the work.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Probability (0 to 1) of doing the work, then answering 500 or dropping the connection.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub ambiguous_rate: f64,
    /// Requests per second allowed before answering 429 with `Retry-After`.
    #[arg(long, value_name = "N")]
    pub throttle_rps: Option<u32>,
    /// Seed of the fault draws, so that a run can be reproduced.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Answer as a server that guesses: echo browser provider `config`, report
    /// `status: "connected"` and `metadata: {}` unasked, and sort and de-duplicate MCP host
    /// patterns.
    #[arg(long)]
    pub guesses: bool,
}

/// Parses a command line. Terraform's single-dash spellings of long flags (`-out=FILE`,
/// `-var 'a=b'`, `-chdir=DIR`, `-auto-approve=true`) are read as their double-dash forms;
/// everything after `--` is left alone.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(terraform_spellings(args))
}

fn terraform_spellings(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    // Every long flag name of every command, and whether it is a plain switch.
    fn collect(cmd: &clap::Command, names: &mut BTreeMap<String, bool>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                let switch = matches!(arg.get_action(), ArgAction::SetTrue);
                names.entry(long.to_owned()).and_modify(|s| *s &= switch).or_insert(switch);
            }
        }
        for sub in cmd.get_subcommands() {
            collect(sub, names);
        }
    }
    let mut names = BTreeMap::new();
    collect(&Cli::command(), &mut names);
    names.insert("help".to_owned(), true);
    names.insert("version".to_owned(), true);
    let mut out = Vec::new();
    let mut rest = false;
    for arg in args {
        let Some(text) = arg.to_str().filter(|_| !rest) else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let single = text.strip_prefix('-').filter(|t| !t.starts_with('-') && t.len() > 1);
        let Some(flag) = single.or_else(|| text.strip_prefix("--")) else {
            out.push(arg);
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        match (names.get(name), value) {
            // A switch given Go's `-flag=true` or `-flag=false`.
            (Some(true), Some("true")) => out.push(OsString::from(format!("--{name}"))),
            (Some(true), Some("false")) => {}
            (Some(_), _) if text.starts_with("--") => out.push(arg),
            (Some(_), _) => out.push(OsString::from(format!("-{text}"))),
            (None, _) => out.push(arg),
        }
    }
    out
}

const PROVIDER_ATTRS: &[&str] = &[
    "tenant_id",
    "apex_domain",
    "api_base_url",
    "org_api_key",
    "org_api_key_file",
    "admin_bearer_token",
    "admin_bearer_token_file",
    "retry_max_attempts",
    "retry_base_delay_ms",
    "retry_max_delay_ms",
    "request_timeout_seconds",
    "insecure_skip_tls_verify",
    "ca_file",
];

/// The provider block's values, evaluated.
#[derive(Debug, Default)]
pub struct ProviderValues {
    values: BTreeMap<String, (Value, crate::model::Span)>,
}

impl ProviderValues {
    /// Evaluates the provider block. It may use variables; anything only known later (locals
    /// or resources) is an error, as connection settings are needed before planning.
    pub fn evaluate(decl: Option<&ProviderDecl>, ev: &Evaluator<'_>, diags: &mut Diagnostics) -> ProviderValues {
        let module = ev.module;
        let mut out = ProviderValues::default();
        let Some(decl) = decl else { return out };
        for (name, expr) in &decl.attributes {
            if !PROVIDER_ATTRS.contains(&name.as_str()) {
                let mut d = Diagnostic::error(format!("unknown argument `{name}` in `provider \"thoth\"`"))
                    .at(expr.key_span, "not a provider setting");
                if let Some(s) = did_you_mean(name, PROVIDER_ATTRS.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
                continue;
            }
            let uses_later = crate::config::references(module, expr)
                .into_iter()
                .find(|(n, _)| !matches!(n, crate::config::Node::Variable(..)));
            if let Some((node, span)) = uses_later {
                diags.push(
                    Diagnostic::error(format!("`{name}` of the provider refers to `{}`", module.node_text(&node)))
                        .at(span, "not known before planning")
                        .help("provider settings may only use variables"),
                );
                continue;
            }
            match ev.eval(expr) {
                Ok((v, _)) if !v.is_null() => {
                    out.values.insert(name.clone(), (v, expr.span));
                }
                Ok(_) => {}
                Err(d) => diags.push(d),
            }
        }
        out
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .map(|(v, _)| match v {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) => format_number(*n),
                other => other.to_json().to_string(),
            })
            .filter(|s| !s.is_empty())
    }

    /// The retry, timeout and TLS settings (with their defaults), checked: retry attempts,
    /// base delay, maximum delay, request timeout, and whether TLS verification is skipped.
    pub fn tuning(&self, diags: &mut Diagnostics) -> (i64, i64, i64, i64, bool) {
        let attempts = self.int("retry_max_attempts", 1..=10, diags).unwrap_or(4);
        let base_ms = self.int("retry_base_delay_ms", 50..=10_000, diags).unwrap_or(300);
        let max_ms = self.int("retry_max_delay_ms", 100..=60_000, diags).unwrap_or(5000);
        let timeout = self.int("request_timeout_seconds", 5..=600, diags).unwrap_or(30);
        let insecure = match self.values.get("insecure_skip_tls_verify") {
            None | Some((Value::Bool(false), _)) => false,
            Some((Value::Bool(true), _)) => true,
            Some((Value::Unknown, _)) => false,
            Some((_, span)) => {
                diags.push(
                    Diagnostic::error("`insecure_skip_tls_verify` must be true or false").at(*span, "not a bool"),
                );
                false
            }
        };
        (attempts, base_ms, max_ms, timeout, insecure)
    }

    fn int(&self, name: &str, range: std::ops::RangeInclusive<i64>, diags: &mut Diagnostics) -> Option<i64> {
        let (v, span) = self.values.get(name)?;
        #[allow(clippy::cast_possible_truncation)]
        let n = match v {
            // A variable `validate` has no value for.
            Value::Unknown => return None,
            Value::Number(n) if n.fract() == 0.0 => *n as i64,
            Value::String(s) => s.trim().parse().ok()?,
            _ => {
                diags.push(
                    Diagnostic::error(format!("`{name}` must be a whole number")).at(*span, "not a whole number"),
                );
                return None;
            }
        };
        if range.contains(&n) {
            Some(n)
        } else {
            diags.push(
                Diagnostic::error(format!("`{name}` must be between {} and {}", range.start(), range.end()))
                    .at(*span, format!("{n} is out of range")),
            );
            None
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn read_secret_file(path: &std::path::Path, what: &str) -> Result<String, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(format!("cannot read the {what} file `{}`: {e}", path.display())))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(Diagnostic::error(format!("the {what} file `{}` is empty", path.display())));
    }
    Ok(text)
}

/// The tenant id, as flags, the provider block and the environment give it (`embedded` for
/// the embedded control plane when none does).
pub fn resolve_tenant(args: &TargetArgs, provider: &ProviderValues) -> Option<String> {
    let given = args.tenant_id.clone().or_else(|| provider.string("tenant_id")).or_else(|| env("THOTH_TENANT_ID"));
    given.or_else(|| args.embedded.then(|| "embedded".to_owned()))
}

/// Resolves where and how to connect. Precedence per setting: flag, provider block,
/// environment, then the documented default.
pub fn resolve_connection(
    args: &ConnectionArgs,
    provider: &ProviderValues,
    diags: &mut Diagnostics,
) -> Option<Connection> {
    let Some(tenant_id) = resolve_tenant(&args.target, provider) else {
        diags.push(
            Diagnostic::error("no tenant id")
                .help("pass `--tenant-id`, set `tenant_id` in `provider \"thoth\"`, or set THOTH_TENANT_ID; use `--embedded` to try thoth locally"),
        );
        return None;
    };
    let apex = args
        .apex_domain
        .clone()
        .or_else(|| provider.string("apex_domain"))
        .or_else(|| env("THOTH_APEX_DOMAIN"))
        .unwrap_or_else(|| "atensecurity.com".to_owned());
    let base_url = args
        .api_base_url
        .clone()
        .or_else(|| provider.string("api_base_url"))
        .or_else(|| env("THOTH_API_BASE_URL"))
        .unwrap_or_else(|| format!("https://grid.{tenant_id}.{apex}"));

    let auth = resolve_auth(args, provider, diags)?;
    let tuning = provider.tuning(diags);
    let (attempts, base_ms, max_ms, timeout, insecure) = tuning;
    if insecure {
        diags.push(
            Diagnostic::warning("TLS certificates of the control plane are not verified (`insecure_skip_tls_verify`)")
                .help("anyone on the path can read the credential and every secret sent; trust a private CA with `ca_file` or SSL_CERT_FILE instead"),
        );
    }
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    Some(Connection {
        tenant_id,
        base_url: base_url.trim().trim_end_matches('/').to_owned(),
        auth,
        retry: Retry {
            attempts: attempts as u32,
            base: Duration::from_millis(base_ms as u64),
            max: Duration::from_millis(max_ms as u64),
        },
        timeout: Duration::from_secs(timeout as u64),
        insecure_skip_tls_verify: insecure,
        ca_file: provider.string("ca_file").or_else(|| env("SSL_CERT_FILE")).map(PathBuf::from),
    })
}

/// Exactly one credential: the first layer (flags, provider block, environment) that sets
/// any wins, and setting both a key and a token within a layer is an error.
fn resolve_auth(args: &ConnectionArgs, provider: &ProviderValues, diags: &mut Diagnostics) -> Option<Auth> {
    let both = |layer: &str| {
        Diagnostic::error(format!("both an API key and an admin token are given in {layer}"))
            .help("give exactly one credential")
    };
    let from_file = |path: &PathBuf, what: &str, diags: &mut Diagnostics| match read_secret_file(path, what) {
        Ok(s) => Some(s),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    match (&args.api_key_file, &args.admin_token_file) {
        (Some(_), Some(_)) => {
            diags.push(both("the command-line flags"));
            return None;
        }
        (Some(p), None) => return from_file(p, "API key", diags).map(Auth::ApiKey),
        (None, Some(p)) => return from_file(p, "admin token", diags).map(Auth::Bearer),
        (None, None) => {}
    }
    let key = provider
        .string("org_api_key")
        .or_else(|| provider.string("org_api_key_file").and_then(|p| from_file(&PathBuf::from(p), "API key", diags)));
    let token = provider.string("admin_bearer_token").or_else(|| {
        provider.string("admin_bearer_token_file").and_then(|p| from_file(&PathBuf::from(p), "admin token", diags))
    });
    match (key, token) {
        (Some(_), Some(_)) => {
            diags.push(both("`provider \"thoth\"`"));
            return None;
        }
        (Some(k), None) => return Some(Auth::ApiKey(k)),
        (None, Some(t)) => return Some(Auth::Bearer(t)),
        (None, None) => {}
    }
    if let Some(k) = env("THOTH_API_KEY") {
        return Some(Auth::ApiKey(k));
    }
    if let Some(p) = env("THOTH_ADMIN_TOKEN_FILE") {
        return from_file(&PathBuf::from(p), "admin token", diags).map(Auth::Bearer);
    }
    diags.push(
        Diagnostic::error("no credentials for the control plane")
            .help("set THOTH_API_KEY, pass `--api-key-file` or `--admin-token-file`, or set `org_api_key_file` in `provider \"thoth\"`"),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn parsed(line: &str) -> String {
        match parse(line.split(' ').map(std::ffi::OsString::from)) {
            Ok(cli) => format!("{cli:?}"),
            Err(e) => format!("error: {}", e.kind()),
        }
    }

    #[test]
    fn terraform_spellings_read_as_the_double_dash_forms() {
        let pairs = [
            (
                "thoth -chdir=dir plan -out=p -var a=b -var-file=f -detailed-exitcode -lock=false -lock-timeout=2m",
                "thoth --chdir=dir plan --out=p --var a=b --var-file=f --detailed-exitcode --lock=false --lock-timeout=2m",
            ),
            (
                "thoth apply -auto-approve -parallelism=4 -input=false -no-color p",
                "thoth apply --auto-approve --parallelism=4 --input=false --no-color p",
            ),
            ("thoth apply -auto-approve=true", "thoth apply --auto-approve"),
            ("thoth apply -auto-approve=false", "thoth apply"),
            ("thoth plan -v", "thoth plan --verbose"),
        ];
        for (single, double) in pairs {
            assert!(!parsed(single).starts_with("error"), "{single}: {}", parsed(single));
            assert_eq!(parsed(single), parsed(double), "{single}");
        }
        // Values and everything after `--` are left alone.
        assert!(parsed("thoth plan --var x=-out").contains("x=-out"));
        assert!(parsed("thoth plan -nonsense").starts_with("error"));
    }
}
