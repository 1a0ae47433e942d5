//! The tooling around the binary: `scripts/prereqs.sh`, which `make run`,
//! `make test` and `.ci/run` call first, and the shell completions and man
//! page the binary writes.
//!
//! The script runs against a fake system: PATH is a temp folder holding only
//! the tools a test gives it (tiny scripts that succeed), and
//! PERSONA_SIM_SYSROOT points it at a temp root with the test's
//! etc/os-release. Nothing is installed: where the script would call
//! apt-get, a fake apt-get records the call.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/prereqs.sh")
}

/// Bash itself, found on the real PATH (the fake one has no bash).
fn bash() -> PathBuf {
    support::needs::on_path("bash").expect("bash is on PATH")
}

const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
const UBUNTU: &str = "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n";
const FEDORA: &str = "NAME=\"Fedora Linux\"\nID=fedora\n";
const ARCH: &str = "NAME=\"Arch Linux\"\nID=arch\n";

/// Every tool the `run` mode checks, as present: cmake, a C++ compiler,
/// make, python3 whose pip answers, and (on Debian) dpkg saying
/// libclang-dev is installed.
const RUN_TOOLS: &[&str] = &["cmake", "g++", "make", "python3", "dpkg"];
const TEST_TOOLS: &[&str] = &["tmux", "promtool", "initdb", "chromium"];

/// A fake system: `root/etc/os-release`, and `root/bin` as the whole PATH.
struct FakeSystem {
    root: tempfile::TempDir,
}

impl FakeSystem {
    fn new(os_release: Option<&str>) -> FakeSystem {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("bin")).unwrap();
        if let Some(text) = os_release {
            fs::create_dir_all(root.path().join("etc")).unwrap();
            fs::write(root.path().join("etc/os-release"), text).unwrap();
        }
        FakeSystem { root }
    }

    fn bin(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    /// An executable `name` on the fake PATH running `body` (sh).
    fn script(&self, name: &str, body: &str) {
        let path = self.bin().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Tools that are simply there (python3's `-m pip --version` and
    /// dpkg's `-s libclang-dev` succeed).
    fn tools(&self, names: &[&str]) {
        for name in names {
            self.script(name, "exit 0");
        }
    }

    fn run_with(&self, mode: &str, envs: &[(&str, &str)]) -> Output {
        let mut command = Command::new(bash());
        command
            .arg(script())
            .arg(mode)
            .env_clear()
            .env("PATH", self.bin())
            .env("PERSONA_SIM_SYSROOT", self.root.path());
        for (key, value) in envs {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    /// Check only: PERSONA_SIM_NO_INSTALL=1.
    fn check(&self, mode: &str) -> Output {
        self.run_with(mode, &[("PERSONA_SIM_NO_INSTALL", "1")])
    }
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The script's one line on stderr, with exit status 1.
fn one_line_failure(out: &Output) -> String {
    let lines = stderr_lines(out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "one line, not {lines:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    lines[0].clone()
}

/// "sudo " unless the tests run as root (the script says what to type).
fn sudo() -> &'static str {
    if unsafe { libc::geteuid() } == 0 {
        ""
    } else {
        "sudo "
    }
}

#[test]
fn with_everything_there_it_says_nothing_and_succeeds() {
    let system = FakeSystem::new(Some(DEBIAN));
    system.tools(RUN_TOOLS);
    let out = system.check("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    system.tools(TEST_TOOLS);
    let out = system.check("test");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn debian_missing_build_tools_get_one_apt_line() {
    let system = FakeSystem::new(Some(DEBIAN));
    system.tools(&["cmake"]);
    // dpkg knows no libclang-dev; python3 has no pip module.
    system.script("dpkg", "exit 1");
    system.script("python3", "echo 'No module named pip' >&2; exit 1");
    system.script("apt-get", "echo \"$*\" >> \"$0.log\"");
    let line = one_line_failure(&system.check("run"));
    assert_eq!(
        line,
        format!(
            "prereqs: missing for 'run': libclang c++ make pip; install them with: {}apt-get install --no-install-recommends libclang-dev g++ make python3-pip",
            sudo()
        )
    );
    assert!(
        !system.bin().join("apt-get.log").exists(),
        "PERSONA_SIM_NO_INSTALL=1 must not run apt-get"
    );
}

#[test]
fn ubuntu_is_found_by_id_like_and_test_mode_adds_the_test_tools() {
    let system = FakeSystem::new(Some(UBUNTU));
    system.tools(RUN_TOOLS);
    // Run mode does not ask for the test tools.
    assert_eq!(system.check("run").status.code(), Some(0));
    system.tools(&["tmux"]);
    let line = one_line_failure(&system.check("test"));
    assert_eq!(
        line,
        format!(
            "prereqs: missing for 'test': promtool postgres chromium; install them with: {}apt-get install --no-install-recommends prometheus postgresql chromium",
            sudo()
        )
    );
}

#[test]
fn the_postgres_server_counts_where_debian_puts_it() {
    let system = FakeSystem::new(Some(DEBIAN));
    system.tools(RUN_TOOLS);
    system.tools(&["tmux", "promtool", "chromium"]);
    // psql alone is a client: the tests need initdb.
    system.tools(&["psql"]);
    let line = one_line_failure(&system.check("test"));
    assert!(
        line.ends_with("--no-install-recommends postgresql"),
        "{line}"
    );
    let bin = system.root.path().join("usr/lib/postgresql/16/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("initdb"), "").unwrap();
    let out = system.check("test");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn fedora_gets_a_dnf_line() {
    let system = FakeSystem::new(Some(FEDORA));
    // g++ and cmake only; libclang is asked of rpm, which says no.
    system.tools(&["g++", "cmake"]);
    system.script("rpm", "exit 1");
    let line = one_line_failure(&system.check("test"));
    assert_eq!(
        line,
        "prereqs: missing for 'test': libclang make pip tmux promtool postgres chromium; install them with: sudo dnf install clang-devel make python3-pip tmux golang-github-prometheus postgresql-server chromium"
    );
}

#[test]
fn arch_gets_a_pacman_line() {
    let system = FakeSystem::new(Some(ARCH));
    system.tools(&["cmake", "make", "python3", "pacman"]);
    let line = one_line_failure(&system.check("run"));
    assert_eq!(
        line,
        "prereqs: missing for 'run': c++; install them with: sudo pacman -S --needed gcc"
    );
    // pacman -Q clang fails: libclang is missing too.
    system.script("pacman", "exit 1");
    let line = one_line_failure(&system.check("run"));
    assert!(
        line.ends_with("sudo pacman -S --needed clang gcc"),
        "{line}"
    );
}

#[test]
fn macos_gets_xcode_and_homebrew_and_is_never_installed_to() {
    // No os-release on macOS: uname says Darwin.
    let system = FakeSystem::new(None);
    system.script("uname", "echo Darwin");
    system.tools(&["cmake"]);
    // Not even without PERSONA_SIM_NO_INSTALL: only apt-get is run.
    let line = one_line_failure(&system.run_with("test", &[]));
    assert_eq!(
        line,
        "prereqs: missing for 'test': libclang c++ make pip tmux promtool postgres chromium; install them with: xcode-select --install && brew install llvm python tmux prometheus postgresql@17 && brew install --cask chromium"
    );
    // With the Command Line Tools (compiler, make, libclang) and Homebrew's
    // python, what is left is one brew line.
    let clt = system
        .root
        .path()
        .join("Library/Developer/CommandLineTools/usr/lib");
    fs::create_dir_all(&clt).unwrap();
    fs::write(clt.join("libclang.dylib"), "").unwrap();
    system.tools(&["c++", "make", "python3"]);
    let line = one_line_failure(&system.check("test"));
    assert_eq!(
        line,
        "prereqs: missing for 'test': tmux promtool postgres chromium; install them with: brew install tmux prometheus postgresql@17 && brew install --cask chromium"
    );
}

#[test]
fn an_unknown_system_gets_the_needs_described() {
    let system = FakeSystem::new(Some("ID=nixos\n"));
    system.tools(&["cmake", "clang++", "make", "python3", "tmux"]);
    let line = one_line_failure(&system.run_with("test", &[]));
    assert_eq!(
        line,
        "prereqs: missing for 'test': libclang (clang's development files), promtool (Prometheus), the PostgreSQL server (initdb), chromium; install them with your system's package manager"
    );
    // LIBCLANG_PATH (bindgen's own variable) naming a folder with libclang
    // is enough on any system.
    let lib = system.root.path().join("llvm/lib");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("libclang.so.16"), "").unwrap();
    let out = system.run_with("run", &[("LIBCLANG_PATH", lib.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A fake apt-get that records each call and, on `install`, makes the tools
/// of the packages it was given appear (dpkg then knows libclang-dev);
/// `broken` installs nothing. Without root, a fake sudo runs it.
fn fake_apt(system: &FakeSystem, broken: bool) {
    let bin = system.bin();
    let log = bin.join("apt.log");
    let install = if broken {
        String::new()
    } else {
        format!(
            r#"if [ "$1" = install ]; then
  for pkg in "$@"; do
    case $pkg in
      g++) tool=c++ ;;
      libclang-dev) tool=dpkg ;;
      prometheus) tool=promtool ;;
      postgresql) tool=initdb ;;
      -*) continue ;;
      *) tool=$pkg ;;
    esac
    printf '#!/bin/sh\nexit 0\n' > "{bin}/$tool"; /bin/chmod +x "{bin}/$tool"
  done
fi"#,
            bin = bin.display()
        )
    };
    system.script(
        "apt-get",
        &format!(
            "echo \"DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*\" >> \"{}\"\n{install}",
            log.display()
        ),
    );
    system.script(
        "sudo",
        &format!(
            "echo sudo >> \"{}\"\nexec /usr/bin/env \"$@\"",
            log.display()
        ),
    );
}

fn apt_log(system: &FakeSystem) -> Vec<String> {
    fs::read_to_string(system.bin().join("apt.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l != "sudo")
        .map(str::to_string)
        .collect()
}

#[test]
fn on_debian_what_is_missing_is_installed_in_one_apt_call() {
    let system = FakeSystem::new(Some(DEBIAN));
    system.tools(&["cmake", "make", "python3", "tmux", "chromium"]);
    system.script("dpkg", "exit 1");
    fake_apt(&system, false);
    let out = system.run_with("test", &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // It says what it installs before it does.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "prereqs: installing with apt-get: libclang-dev g++ prometheus postgresql\n"
    );
    assert_eq!(
        apt_log(&system),
        [
            "DEBIAN_FRONTEND=noninteractive update -qq",
            "DEBIAN_FRONTEND=noninteractive install -y -qq --no-install-recommends libclang-dev g++ prometheus postgresql",
        ]
    );
    // Run again: everything is there, so apt-get is not called again.
    let out = system.run_with("test", &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(apt_log(&system).len(), 2);
}

#[test]
fn an_install_that_leaves_something_missing_fails_with_the_line() {
    let system = FakeSystem::new(Some(DEBIAN));
    system.tools(&["cmake", "make", "python3", "dpkg"]);
    fake_apt(&system, true);
    let out = system.run_with("run", &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(apt_log(&system).len(), 2, "one update, one install");
    let lines = stderr_lines(&out);
    assert_eq!(
        lines,
        [format!(
            "prereqs: missing for 'run': c++; install them with: {}apt-get install --no-install-recommends g++",
            sudo()
        )]
    );
}

#[test]
fn a_wrong_mode_is_a_usage_error() {
    let system = FakeSystem::new(Some(DEBIAN));
    for args in [&[][..], &["build"][..], &["run", "test"][..]] {
        let out = Command::new(bash())
            .arg(script())
            .args(args)
            .env_clear()
            .env("PATH", system.bin())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("usage: scripts/prereqs.sh run|test"),
            "{lines:?}"
        );
    }
}

#[test]
fn the_script_parses_and_passes_shellcheck() {
    let out = Command::new(bash())
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // shellcheck is not installed for this; where it is, it must be clean.
    if let Some(shellcheck) = support::needs::on_path("shellcheck") {
        let out = Command::new(shellcheck).arg(script()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("shellcheck is not installed: only `bash -n` ran");
    }
}

#[test]
fn make_and_ci_call_the_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let makefile = fs::read_to_string(root.join("Makefile")).unwrap();
    for (target, mode) in [("run", "run"), ("model", "run"), ("test", "test")] {
        let recipe = makefile
            .split(&format!("\n{target}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {target} target"));
        let first = recipe.lines().next().unwrap().trim();
        assert_eq!(first, format!("bash scripts/prereqs.sh {mode}"), "{target}");
    }
    let ci = fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("\nbash scripts/prereqs.sh test\n"), "{ci}");
    assert!(
        !ci.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("apt-get")),
        ".ci/run installs through the script only"
    );
}

/// `persona-sim ARGS` run to the end with a temp data directory and no
/// server; its stdout, stderr and exit code.
fn persona_sim(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    support::binary::command(dir.path(), None, args)
        .output()
        .unwrap()
}

#[test]
fn completions_for_every_shell_name_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = persona_sim(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = text(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {script}");
        // fish names flags without their dashes (`-l rounds`).
        for word in ["simulate", "personas", "rounds", "feature"] {
            assert!(script.contains(word), "{shell}: no {word} in\n{script}");
        }
    }
    let out = persona_sim(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("possible values: bash"),
        "{out:?}"
    );
}

#[test]
fn bash_completion_loads_and_completes_a_subcommand() {
    let out = persona_sim(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("persona-sim.bash");
    fs::write(&file, &out.stdout).unwrap();
    // Source the script and ask its function what `persona-sim sess<TAB>`
    // completes to, as bash would.
    let probe = format!(
        "source {}; COMP_WORDS=(persona-sim sess); COMP_CWORD=1; COMP_LINE='persona-sim sess'; COMP_POINT=${{#COMP_LINE}}; _persona__sim persona-sim sess persona-sim; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new(bash()).arg("-c").arg(probe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "sessions");
    // After a subcommand: its own options and the global ones.
    let complete = |words: &str| {
        let probe = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _persona__sim persona-sim \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = Command::new(bash()).arg("-c").arg(probe).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        text(&out.stdout)
    };
    assert_eq!(
        complete("persona-sim simulate --fea").trim(),
        "--feature\n--feature-file"
    );
    assert_eq!(complete("persona-sim simulate --rou").trim(), "--rounds");
    assert_eq!(
        complete("persona-sim sessions export --for").trim(),
        "--format"
    );
}

#[test]
fn man_writes_a_roff_page_for_the_binary() {
    let out = persona_sim(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = text(&out.stdout);
    assert!(page.starts_with('.'), "roff starts with a request: {page}");
    assert!(
        page.lines().any(|l| l.starts_with(".TH persona-sim 1")),
        "{page}"
    );
    assert!(page.contains(".SH NAME\npersona\\-sim"), "{page}");
    assert!(page.contains("\\-\\-rounds"), "{page}");
}

#[test]
fn subcommand_help_shows_its_own_options_and_top_level_help_all() {
    let out = persona_sim(&["sessions", "--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    assert!(help.contains("export"), "{help}");
    for global in ["--temperature", "--data-dir", "--metrics-port"] {
        assert!(!help.contains(global), "{global} in\n{help}");
    }
    assert!(help.contains("persona-sim --help"), "{help}");
    let help = text(&persona_sim(&["simulate", "--help"]).stdout);
    assert!(
        help.contains("--feature") && !help.contains("--temperature"),
        "{help}"
    );
    let top = text(&persona_sim(&["--help"]).stdout);
    for option in ["--temperature", "--data-dir", "--metrics-port", "--rounds"] {
        assert!(top.contains(option), "{option} in\n{top}");
    }
    for subcommand in ["simulate", "sessions", "completions", "man"] {
        assert!(top.contains(subcommand), "{subcommand} in\n{top}");
    }
}

#[tokio::test]
async fn global_options_given_after_the_subcommand_still_apply() {
    let server = support::MockServer::persona_echo(std::time::Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = support::binary::run(support::binary::command(
        dir.path(),
        Some(&server.base_url),
        &[
            "simulate",
            "--feature",
            "Offline mode",
            "--personas",
            "2",
            "--rounds",
            "2",
            "--temperature",
            "0.25",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one persona, two rounds");
    for request in &requests {
        assert_eq!(request.body["temperature"], 0.25);
    }
    // And a bad value there is still refused.
    let out = persona_sim(&["simulate", "--feature", "x", "--rounds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--rounds"), "{out:?}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
