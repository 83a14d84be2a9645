//! Runs the shell transcripts of the tutorial against the real binaries.
//!
//! A transcript is a fenced block marked `console`: lines starting with `$ ` are commands, the
//! lines after each command are what it prints (stdout and stderr together). A line ending with
//! `\` continues on the next.
//!
//! - `cargo run -p PACKAGE [--bin NAME] [-- ARGS]` runs the binary that the test built, so
//!   transcripts exercise exactly the code under test, without nesting cargo.
//! - A command ending with `&` starts a service in the background. The runner waits until it
//!   listens, keeps it running for the rest of the page (later blocks can `curl` it), and stops it
//!   with SIGTERM when the page ends; it must then exit with status 0. Lines written under a
//!   background command are compared with everything the service printed by then. One whose
//!   lines show it registering in etcd (`msg=registered`) is also waited for until it has.
//! - Ports vary: each port a page names (`localhost:8080`, `--listen :8001`) is mapped to a free
//!   one for the run and mapped back in the output. A [service](Binary::service) run without
//!   `--listen` (or Go's `-listen=`) gets `--listen :8080`, its default, so that it listens on this run's stand-in for
//!   port 8080 rather than on the machine's real one. A [server](Binary::server) with several
//!   listen flags gets each one it is run without, with its default, and the runner waits for
//!   the first.
//! - `kill %N` (or `kill %1 %2`) stops the page's Nth background command, counting from 1 in
//!   the order they were started, as the reader's shell numbers its jobs: the runner sends it
//!   SIGTERM, which must make it exit with status 0, and compares its output then. The page
//!   shows no output for `kill` itself.
//! - A command that exits with a status other than 0 must show it as the last line of its
//!   output: `[exit status 2]`.
//! - Commands run with `LC_ALL=C`, so that `sort` and friends order the same on every machine.
//! - In expected output, `[..]` matches any text within a line, and a line `...` matches any
//!   number of lines: use them for timings and other values that vary.
//! - `curl` runs with `--silent --show-error`, so its progress meter does not get in the way, and
//!   with no proxy, so that a proxy set on the machine cannot intercept loopback calls.
//!
//! - A program the page runs by its path (`target/tools/etcd ... &`) is the test's copy of it
//!   when the test provides it ([`Binary::external`]); one whose clean stop is to die of SIGTERM,
//!   as etcd's is, says so ([`Binary::dies_by_sigterm`]).
//!
//! Each crate whose binary a page runs owns that page: its `tests/tutorial.rs` calls
//! [`run_pages`] with its binaries, and runs every page that uses no other package. A page about
//! several services (the API gateway and the instances behind it) is run by one of them, with
//! [`run_pages_with`] and the others' binaries.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use regex::Regex;

use crate::book::{self, Block};
use crate::process::{Spawned, free_port};

/// One command of a transcript and the output shown for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line of the command in its page.
    pub line: usize,
    /// The command, as written (continuations joined), without a trailing `&`.
    pub command: String,
    /// Whether it ends with `&`.
    pub background: bool,
    /// The lines shown after it.
    pub expected: Vec<String>,
}

/// The steps of a `console` block.
pub fn steps(block: &Block) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continuing = false;
    for (offset, line) in block.lines.iter().enumerate() {
        if continuing {
            if let Some(step) = steps.last_mut() {
                let (text, more) = continuation(line);
                step.command.push(' ');
                step.command.push_str(text.trim());
                continuing = more;
            }
        } else if let Some(command) = line.strip_prefix("$ ") {
            let (text, more) = continuation(command);
            steps.push(Step {
                line: block.line + 1 + offset,
                command: text.trim().to_owned(),
                background: false,
                expected: Vec::new(),
            });
            continuing = more;
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_owned());
        } else {
            return Err(format!(
                "{}: a console block must start with a `$ ` command",
                block.location()
            ));
        }
    }
    if steps.is_empty() {
        return Err(format!(
            "{}: a console block without commands",
            block.location()
        ));
    }
    for step in &mut steps {
        if let Some(command) = step.command.strip_suffix('&') {
            step.command = command.trim_end().to_owned();
            step.background = true;
        }
        trim_trailing_blank(&mut step.expected);
    }
    Ok(steps)
}

fn continuation(line: &str) -> (&str, bool) {
    match line.trim_end().strip_suffix('\\') {
        Some(text) => (text, true),
        None => (line, false),
    }
}

fn trim_trailing_blank(lines: &mut Vec<String>) {
    for line in lines.iter_mut() {
        line.truncate(line.trim_end().len());
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
}

/// A `cargo run` command taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoRun {
    /// The package, from `-p`.
    pub package: String,
    /// The binary, from `--bin`, else the package's name.
    pub bin: String,
    /// Everything after `--`, as written (the shell parses it).
    pub args: String,
}

/// Reads `cargo run -p PACKAGE [--bin NAME] [-q] [--release] [-- ARGS]`.
pub fn cargo_run(command: &str) -> Option<CargoRun> {
    let rest = command.strip_prefix("cargo run ")?;
    let (flags, args) = match rest.split_once(" -- ") {
        Some((flags, args)) => (flags, args.trim().to_owned()),
        None => (rest.strip_suffix(" --").unwrap_or(rest), String::new()),
    };
    let mut words = flags.split_whitespace();
    let (mut package, mut bin) = (None, None);
    while let Some(word) = words.next() {
        match word {
            "-p" | "--package" => package = words.next().map(str::to_owned),
            "--bin" => bin = words.next().map(str::to_owned),
            "-q" | "--quiet" | "--release" => {}
            _ => return None,
        }
    }
    let package = package?;
    Some(CargoRun {
        bin: bin.unwrap_or_else(|| package.clone()),
        package,
        args,
    })
}

/// The packages a page's transcripts `cargo run`.
pub fn packages_of(blocks: &[Block]) -> BTreeSet<String> {
    blocks
        .iter()
        .filter(|b| b.language() == "console")
        .filter_map(|b| steps(b).ok())
        .flatten()
        .filter_map(|s| cargo_run(&s.command).map(|c| c.package))
        .collect()
}

/// A binary that transcripts run, as the test built it.
#[derive(Debug, Clone)]
pub struct Binary {
    name: String,
    path: PathBuf,
    /// The flags that say where it listens, each with its default (`--listen`, `:8080` for a
    /// service); none for a tool.
    listen: Vec<(String, String)>,
    /// Whether dying of SIGTERM is its clean stop.
    dies_by_sigterm: bool,
}

impl Binary {
    /// A server that takes `--listen ADDR` and listens on `:8080` by default.
    pub fn service(name: &str, path: &str) -> Self {
        Self::server(name, path, &[("--listen", ":8080")])
    }

    /// A server with several listeners, each set by a flag with a default address
    /// (`[("-debug.addr", ":8080"), ("-http-addr", ":8081")]`); the runner waits for the first.
    pub fn server(name: &str, path: &str, listen: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            path: PathBuf::from(path),
            listen: listen
                .iter()
                .map(|(flag, default)| ((*flag).to_owned(), (*default).to_owned()))
                .collect(),
            dies_by_sigterm: false,
        }
    }

    /// A program the page runs by its path, not with `cargo run` (`target/tools/etcd`): `name`
    /// is the path as the page writes it, `path` where the test has it. In the background, the
    /// runner waits until it listens on the port of the first of `listen`'s flags (whose
    /// defaults are not added: the page gives every flag itself).
    pub fn external(name: &str, path: &str, listen: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            path: PathBuf::from(path),
            listen: listen
                .iter()
                .map(|flag| ((*flag).to_owned(), String::new()))
                .collect(),
            dies_by_sigterm: false,
        }
    }

    /// Its clean stop on SIGTERM is to die of the signal, not to exit 0 (etcd, like many Go
    /// servers, cleans up and then re-raises it).
    pub fn dies_by_sigterm(mut self) -> Self {
        self.dies_by_sigterm = true;
        self
    }

    /// Any other program: run with the arguments the page gives, nothing added.
    pub fn tool(name: &str, path: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: PathBuf::from(path),
            listen: Vec::new(),
            dies_by_sigterm: false,
        }
    }
}

/// Runs every page whose transcripts use `package` and no other package, with the package's
/// `binaries` (paths from `env!("CARGO_BIN_EXE_…")`).
///
/// Panics with a report of every mismatch; returns how many transcripts ran.
pub fn run_pages(package: &str, binaries: &[Binary]) -> usize {
    run_pages_with(package, &[], binaries)
}

/// Runs every page whose transcripts use `package`, and no other packages than `others`, with
/// `binaries` (those of `package` and of `others`): for a page about several services at once.
///
/// Panics with a report of every mismatch; returns how many transcripts ran.
pub fn run_pages_with(package: &str, others: &[&str], binaries: &[Binary]) -> usize {
    let mut ran = 0;
    let mut failures = Vec::new();
    for page in book::pages() {
        let Ok(text) = fs::read_to_string(&page) else {
            continue;
        };
        let blocks: Vec<Block> = book::blocks(&page, &text)
            .into_iter()
            .filter(|b| b.language() == "console")
            .collect();
        let packages = packages_of(&blocks);
        if !packages.contains(package)
            || packages
                .iter()
                .any(|p| p != package && !others.contains(&p.as_str()))
        {
            continue;
        }
        let mut session = Session::new(binaries);
        for block in &blocks {
            match steps(block) {
                Ok(steps) => {
                    for step in steps {
                        session.run(&step);
                    }
                    ran += 1;
                }
                Err(problem) => session.failures.push(problem),
            }
        }
        failures.extend(session.finish());
    }
    assert!(
        failures.is_empty(),
        "{} transcript mismatch(es):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    ran
}

/// The state of one page's run: its ports, its background services, what went wrong.
struct Session {
    binaries: Vec<Binary>,
    /// Each port the page names, with the free port that stands for it in this run.
    ports: Vec<(u16, u16)>,
    /// Every background command of the page in the order started, as shell jobs `%1`, `%2`,
    /// ...; `None` once `kill` stopped it.
    background: Vec<(Step, Option<Spawned>, bool)>,
    /// The page's own scratch directory, removed with the session: it holds the `.curlrc` that
    /// quiets curl's progress meter (`CURL_HOME`), and is the commands' `TMPDIR`, so that what a
    /// page puts in `$(mktemp -d)` (etcd's data, 64 MB) does not outlive the test. Declared after
    /// `background`, whose processes are stopped before it goes.
    scratch: Option<tempfile::TempDir>,
    failures: Vec<String>,
    root: PathBuf,
    page_port: Regex,
}

impl Session {
    fn new(binaries: &[Binary]) -> Self {
        let scratch = tempfile::tempdir().ok().filter(|dir| {
            fs::write(
                dir.path().join(".curlrc"),
                "--silent\n--show-error\n--noproxy \"*\"\n",
            )
            .is_ok()
        });
        Self {
            binaries: binaries.to_vec(),
            ports: Vec::new(),
            background: Vec::new(),
            scratch,
            failures: Vec::new(),
            root: book::workspace_root(),
            // A port after a loopback host anywhere, or a bare `:PORT` as a flag's value.
            page_port: Regex::new(
                r"((?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\]):|(?:^|[\s=]):)(\d{2,5})\b",
            )
            .unwrap_or_else(|e| panic!("port pattern: {e}")),
        }
    }

    fn real_port(&mut self, page_port: u16) -> u16 {
        if let Some((_, real)) = self.ports.iter().find(|(p, _)| *p == page_port) {
            return *real;
        }
        let real = free_port();
        self.ports.push((page_port, real));
        real
    }

    /// The command with the page's ports replaced by this run's.
    fn localize(&mut self, command: &str) -> String {
        let pattern = self.page_port.clone();
        pattern
            .replace_all(command, |c: &regex::Captures<'_>| {
                let port = c[2].parse::<u16>().map(|p| self.real_port(p));
                match port {
                    Ok(port) => format!("{}{port}", &c[1]),
                    Err(_) => c[0].to_owned(),
                }
            })
            .into_owned()
    }

    /// Output with this run's ports replaced by the page's.
    fn globalize(&self, output: &str) -> String {
        let mut output = output.to_owned();
        for (page, real) in &self.ports {
            let pattern =
                Regex::new(&format!(r":{real}\b")).unwrap_or_else(|e| panic!("port pattern: {e}"));
            output = pattern
                .replace_all(&output, format!(":{page}").as_str())
                .into_owned();
        }
        output
    }

    fn shell(&self, script: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .current_dir(&self.root)
            .env("LC_ALL", "C");
        if let Some(scratch) = &self.scratch {
            command
                .env("CURL_HOME", scratch.path())
                .env("TMPDIR", scratch.path());
        }
        command
    }

    fn run(&mut self, step: &Step) {
        if let Some(jobs) = step.command.strip_prefix("kill %") {
            self.kill(step, jobs);
            return;
        }
        let mut command = step.command.clone();
        let mut listen_port = None;
        let mut wait_flag = None;
        let mut dies_by_sigterm = false;
        let first_word = step.command.split_whitespace().next().unwrap_or_default();
        if let Some(binary) = self
            .binaries
            .iter()
            .find(|b| b.name == first_word && b.name.contains('/'))
        {
            let rest = &step.command[first_word.len()..];
            wait_flag = binary
                .listen
                .first()
                .map(|(flag, _)| flag_name(flag).to_owned());
            dies_by_sigterm = binary.dies_by_sigterm;
            command = format!("exec '{}'{rest}", binary.path.display());
        } else if let Some(run) = cargo_run(&step.command) {
            let Some(binary) = self.binaries.iter().find(|b| b.name == run.bin) else {
                self.failures.push(format!(
                    "line {}: `{}` runs binary {}, which this test does not provide",
                    step.line, step.command, run.bin
                ));
                return;
            };
            let mut args = run.args;
            for (flag, default) in &binary.listen {
                if !args.contains(flag_name(flag)) {
                    args = format!("{args} {flag} {default}").trim().to_owned();
                }
            }
            wait_flag = binary
                .listen
                .first()
                .map(|(flag, _)| flag_name(flag).to_owned());
            command = format!("exec '{}' {args}", binary.path.display());
        }
        let command = self.localize(&command);
        if step.background {
            let flag = wait_flag.as_deref().unwrap_or("listen");
            listen_port = self.listen_port(&command, flag);
        }

        if step.background {
            let spawned = Spawned::start(self.shell(&command));
            match spawned {
                Ok(mut spawned) => {
                    if let Some(Err(problem)) = listen_port.map(|port| spawned.wait_for_port(port))
                    {
                        self.failures
                            .push(format!("line {}: `{}`: {problem}", step.line, step.command));
                    } else if let Err(problem) = wait_for_registration(step, &mut spawned) {
                        self.failures
                            .push(format!("line {}: `{}`: {problem}", step.line, step.command));
                    }
                    self.background
                        .push((step.clone(), Some(spawned), dies_by_sigterm));
                }
                Err(err) => self.failures.push(format!(
                    "line {}: cannot start `{command}`: {err}",
                    step.line
                )),
            }
            return;
        }

        let output = Spawned::start(self.shell(&command)).and_then(|mut child| {
            let status = child.wait().map_err(std::io::Error::other)?;
            let mut output = child.output();
            if !status.success() {
                if !output.is_empty() && !output.ends_with('\n') {
                    output.push('\n');
                }
                match status.code() {
                    Some(code) => output.push_str(&format!("[exit status {code}]\n")),
                    None => output.push_str(&format!("[{status}]\n")),
                }
            }
            Ok(output)
        });
        match output {
            Ok(output) => {
                let output = self.globalize(&output);
                self.compare(step, &output);
            }
            Err(err) => self
                .failures
                .push(format!("line {}: cannot run `{command}`: {err}", step.line)),
        }
    }

    /// The port a background command listens on: the one after `--FLAG` or Go's `-FLAG`
    /// (`listen` unless the binary says otherwise).
    fn listen_port(&self, command: &str, flag: &str) -> Option<u16> {
        let after = command.split(&format!("-{flag}")).nth(1)?;
        let value = after
            .trim_start_matches(['=', ' '])
            .split_whitespace()
            .next()?;
        value.rsplit(':').next()?.parse().ok()
    }

    fn compare(&mut self, step: &Step, output: &str) {
        let mut actual: Vec<String> = output.lines().map(str::to_owned).collect();
        trim_trailing_blank(&mut actual);
        if !matches(&step.expected, &actual) {
            let mut report = format!("line {}: `{}` printed:\n", step.line, step.command);
            for line in &actual {
                let _ = writeln!(report, "    {line}");
            }
            report.push_str("  but the page shows:\n");
            for line in &step.expected {
                let _ = writeln!(report, "    {line}");
            }
            self.failures.push(report);
        }
    }

    /// `kill %N [%M ...]`: stops those background commands and checks how they went.
    fn kill(&mut self, step: &Step, jobs: &str) {
        if !step.expected.is_empty() {
            self.failures.push(format!(
                "line {}: `{}` prints nothing; the page shows output",
                step.line, step.command
            ));
        }
        for job in jobs.split_whitespace() {
            let number = job.trim_start_matches('%').parse::<usize>().ok();
            let found = number
                .and_then(|n| n.checked_sub(1))
                .and_then(|at| self.background.get_mut(at))
                .and_then(|(started, spawned, by_signal)| {
                    Some((started.clone(), spawned.take()?, *by_signal))
                });
            match found {
                Some((started, spawned, by_signal)) => self.stop(&started, spawned, by_signal),
                None => self.failures.push(format!(
                    "line {}: `{}`: no running background command %{}",
                    step.line,
                    step.command,
                    job.trim_start_matches('%')
                )),
            }
        }
    }

    /// Stops a background command with SIGTERM; it must exit 0 and have printed what its
    /// page shows.
    fn stop(&mut self, step: &Step, mut spawned: Spawned, dies_by_sigterm: bool) {
        use std::os::unix::process::ExitStatusExt;
        match spawned.terminate() {
            Ok(status) if status.success() => {}
            Ok(status) if dies_by_sigterm && status.signal() == Some(15) => {}
            Ok(status) => self.failures.push(format!(
                "line {}: `{}` exited with {status} on SIGTERM instead of 0; it printed:\n{}",
                step.line,
                step.command,
                spawned.output()
            )),
            Err(problem) => self.failures.push(problem),
        }
        let output = self.globalize(&spawned.output());
        self.compare(step, &output);
    }

    /// Stops the page's services and checks how they went; returns the failures.
    fn finish(mut self) -> Vec<String> {
        let background = std::mem::take(&mut self.background);
        for (step, spawned, dies_by_sigterm) in background.into_iter().rev() {
            if let Some(spawned) = spawned {
                self.stop(&step, spawned, dies_by_sigterm);
            }
        }
        self.failures
    }
}

/// A flag without its dashes: `--listen` and `-listen` are both `listen`.
fn flag_name(flag: &str) -> &str {
    flag.trim_start_matches('-')
}

/// Whether `actual` fits `expected`, where `[..]` matches any text within a line and a line
/// `...` matches any number of lines.
pub fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && matches(rest, more)),
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Paths of the pages that hold transcripts, for the book's own checks.
pub fn pages_with_transcripts() -> Vec<(PathBuf, Vec<Block>)> {
    book::pages()
        .into_iter()
        .filter_map(|page| {
            let text = fs::read_to_string(&page).ok()?;
            let blocks: Vec<Block> = book::blocks(&page, &text)
                .into_iter()
                .filter(|b| b.language() == "console")
                .collect();
            (!blocks.is_empty()).then_some((page, blocks))
        })
        .collect()
}

/// For a background command whose page shows it registering in etcd (a `msg=registered` line),
/// waits until it has printed that line, as a reader waits for it before calling the service
/// through a gateway: listening comes first, and a call made between the two finds no instance.
fn wait_for_registration(step: &Step, spawned: &mut Spawned) -> Result<(), String> {
    const REGISTERED: &str = "msg=registered ";
    if step.expected.iter().any(|line| line.contains(REGISTERED)) {
        spawned.wait_for_output(REGISTERED)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn block(text: &str) -> Block {
        Block {
            page: PathBuf::from("page.md"),
            line: 10,
            info: "console".into(),
            lines: lines(text),
        }
    }

    #[test]
    fn steps_split_commands_and_output() {
        let steps = steps(&block(
            "$ cargo run -p svc &\n$ curl -d'{}' \\\n    localhost:8080/x\n{\"v\":1}\n\n$ true\n",
        ))
        .expect("valid");
        assert_eq!(steps.len(), 3);
        assert!(steps[0].background);
        assert_eq!(steps[0].command, "cargo run -p svc");
        assert_eq!(steps[1].command, "curl -d'{}' localhost:8080/x");
        assert_eq!(steps[1].line, 12);
        assert_eq!(steps[1].expected, ["{\"v\":1}"]);
        assert!(steps[2].expected.is_empty());
    }

    #[test]
    fn a_block_must_start_with_a_command() {
        assert!(steps(&block("output\n$ true")).is_err());
        assert!(steps(&block("")).is_err());
    }

    #[test]
    fn cargo_run_is_taken_apart() {
        assert_eq!(
            cargo_run("cargo run -p stringsvc1 -- --listen :8001"),
            Some(CargoRun {
                package: "stringsvc1".into(),
                bin: "stringsvc1".into(),
                args: "--listen :8001".into()
            })
        );
        assert_eq!(
            cargo_run("cargo run -q -p addsvc --bin addcli -- -a 1"),
            Some(CargoRun {
                package: "addsvc".into(),
                bin: "addcli".into(),
                args: "-a 1".into()
            })
        );
        assert_eq!(cargo_run("cargo test"), None);
        assert_eq!(cargo_run("curl localhost:8080"), None);
    }

    #[test]
    fn wildcards_match_within_and_across_lines() {
        assert!(matches(&lines("a [..] c"), &lines("a b b c")));
        assert!(!matches(&lines("a [..] c"), &lines("a b d")));
        assert!(matches(&lines("took=[..]"), &lines("took=1.2µs")));
        assert!(matches(
            &lines("start\n...\nend"),
            &lines("start\nx\ny\nend")
        ));
        assert!(matches(&lines("start\n...\nend"), &lines("start\nend")));
        assert!(!matches(&lines("start\n...\nend"), &lines("start\nx")));
        assert!(!matches(&lines("one"), &lines("one\ntwo")));
        assert!(matches(&[], &[]));
    }

    #[test]
    fn what_a_page_puts_in_a_temporary_directory_goes_with_the_session() {
        // Stopped by SIGTERM, as etcd is.
        let mut session =
            Session::new(&[Binary::external("/bin/sh", "/bin/sh", &[]).dies_by_sigterm()]);
        let step = |command: &str, background| Step {
            line: 1,
            command: command.into(),
            background,
            expected: Vec::new(),
        };
        let made = session.shell("mktemp -d").output().expect("runs mktemp");
        let made = PathBuf::from(String::from_utf8_lossy(&made.stdout).trim());
        assert!(made.is_dir(), "mktemp made no {made:?}");
        // A background command still writing there when the page ends, as etcd does.
        let writer = format!("/bin/sh -c 'while :; do date > {}/x; done'", made.display());
        session.run(&step(&writer, true));
        assert_eq!(session.finish(), Vec::<String>::new());
        assert!(!made.exists(), "{made:?} outlived its session");
    }

    #[test]
    fn servers_wait_for_the_flag_they_are_given() {
        let session = Session::new(&[]);
        let command = "exec addsvc -debug.addr :41 -http-addr :42 --listen :43";
        assert_eq!(session.listen_port(command, "debug.addr"), Some(41));
        assert_eq!(session.listen_port(command, "http-addr"), Some(42));
        assert_eq!(session.listen_port(command, "listen"), Some(43));
        assert_eq!(
            session.listen_port("exec stringsvc3 -listen=:8001", "listen"),
            Some(8001)
        );
        assert_eq!(session.listen_port(command, "grpc-addr"), None);
        let server = Binary::server("addsvc", "/bin/addsvc", &[("-debug.addr", ":8080")]);
        assert_eq!(
            server.listen,
            [("-debug.addr".to_owned(), ":8080".to_owned())]
        );
        assert!(Binary::tool("addcli", "/bin/addcli").listen.is_empty());
    }

    #[test]
    fn ports_are_localized_and_mapped_back() {
        let mut session = Session::new(&[]);
        let command = session.localize(
            r#"curl -d'{"a":8080}' localhost:8080/x && svc --listen :8001 --other=:8001"#,
        );
        let real_8080 = session.real_port(8080);
        let real_8001 = session.real_port(8001);
        assert_eq!(
            command,
            format!(
                r#"curl -d'{{"a":8080}}' localhost:{real_8080}/x && svc --listen :{real_8001} --other=:{real_8001}"#
            )
        );
        assert_eq!(
            session.globalize(&format!("listening on :{real_8001}, 127.0.0.1:{real_8080}")),
            "listening on :8001, 127.0.0.1:8080"
        );
    }
}
