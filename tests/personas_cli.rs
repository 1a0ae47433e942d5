//! `persona-sim personas …` as a user runs it: the real binary on a temp
//! data directory, and a mock OpenAI-compatible server for `generate`.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use persona_sim::persona::{Persona, builtin_panel, parse_panel};
use serde_json::{Value, json};
use support::MockServer;
use support::binary::{BIN, command, text};

/// Runs `persona-sim ARGS` to the end (stdin is not a terminal).
fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, None, args).output().unwrap()
}

/// Runs it with `input` on stdin.
fn run_with_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = command(dir, None, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs it against the mock server (see `support::binary::run`).
async fn run_against(dir: &Path, server: &MockServer, args: &[&str]) -> Output {
    support::binary::run(command(dir, Some(&server.base_url), args)).await
}

/// Asserts the exit code and returns (stdout, stderr).
#[track_caller]
fn expect(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

fn main_file(dir: &Path) -> PathBuf {
    dir.join("personas.json")
}

/// The panel on disk.
fn panel(dir: &Path) -> Vec<Persona> {
    parse_panel(&std::fs::read_to_string(main_file(dir)).unwrap()).unwrap()
}

fn ids(panel: &[Persona]) -> Vec<u32> {
    panel.iter().map(|p| p.id).collect()
}

/// A data directory holding the built-in panel (written by a first run).
fn fresh() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (_, stderr) = expect(&run(dir.path(), &["personas", "list"]), 0);
    assert!(stderr.contains("First run"), "{stderr}");
    dir
}

fn persona_json(name: &str, occupation: &str, level: &str) -> Value {
    json!({"name": name, "occupation": occupation, "location": "Porto, Portugal",
        "tech_proficiency": level, "behavioral_traits": ["careful", "works nights"], "age": 44})
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn import_lists_every_invalid_record_and_imports_nothing() {
    let dir = fresh();
    let before_list = expect(&run(dir.path(), &["personas", "list"]), 0).0;
    let before_file = std::fs::read_to_string(main_file(dir.path())).unwrap();
    let mut good_1 = persona_json("Rita Costa", "Pharmacist", "Medium");
    good_1["id"] = json!(21);
    let mut bad_2 = persona_json("  ", "Baker", "Low");
    bad_2["id"] = json!(22);
    let mut bad_3 = persona_json("Ivo Reis", "Driver", "Expert");
    bad_3["id"] = json!(23);
    bad_3["age"] = json!(300);
    let mut good_4 = persona_json("Lia Matos", "Teacher", "High");
    good_4["id"] = json!(24);
    good_4.as_object_mut().unwrap().remove("age");
    let mut bad_5 = persona_json("Rui Sá", "Cook", "Low");
    bad_5["id"] = json!(25);
    bad_5.as_object_mut().unwrap().remove("occupation");
    let file = write(
        dir.path(),
        "five.json",
        &json!([good_1, bad_2, bad_3, good_4, bad_5]).to_string(),
    );
    let file = file.to_str().unwrap();

    let (stdout, stderr) = expect(&run(dir.path(), &["personas", "import", file]), 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("3 of 5 records are invalid; nothing was imported"),
        "{stderr}"
    );
    for line in [
        "record 2 (id 22): field `name`: must not be empty",
        "record 3 (id 23): field `tech_proficiency`: unknown variant `Expert`",
        "record 3 (id 23): field `age`: 300 is not a plausible age",
        "record 5 (id 25): field `occupation`: missing field `occupation`",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    assert!(!stderr.contains("record 1 ") && !stderr.contains("record 4 "));
    assert!(stderr.contains("--skip-invalid to import the 2 valid records"));
    assert_eq!(
        std::fs::read_to_string(main_file(dir.path())).unwrap(),
        before_file
    );
    assert_eq!(
        expect(&run(dir.path(), &["personas", "list"]), 0).0,
        before_list
    );

    let (stdout, stderr) = expect(
        &run(dir.path(), &["personas", "import", file, "--skip-invalid"]),
        0,
    );
    assert!(
        stdout.contains("imported 2 personas") && stdout.contains("replacing the panel of 14"),
        "{stdout}"
    );
    assert!(
        stderr.contains("skipping 3 invalid records of 5") && stderr.contains("record 5 (id 25)"),
        "{stderr}"
    );
    let now = panel(dir.path());
    assert_eq!(ids(&now), [21, 24]);
    assert_eq!(now[1].name, "Lia Matos");
    // The replaced panel is the backup.
    let backup = std::fs::read_to_string(dir.path().join("personas_backup.json")).unwrap();
    assert_eq!(parse_panel(&backup).unwrap(), builtin_panel());
}

#[test]
fn json_export_and_import_round_trip() {
    let dir = fresh();
    let (stdout, _) = expect(&run(dir.path(), &["personas", "export"]), 0);
    assert_eq!(parse_panel(&stdout).unwrap(), builtin_panel());
    let file = dir.path().join("exported.json");
    let (_, stderr) = expect(
        &run(
            dir.path(),
            &["personas", "export", "--out", file.to_str().unwrap()],
        ),
        0,
    );
    assert!(stderr.contains("wrote 14 personas"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);

    expect(&run(dir.path(), &["personas", "rm", "2", "5"]), 0);
    expect(
        &run(
            dir.path(),
            &["personas", "edit", "1", "--set", "name=Someone Else"],
        ),
        0,
    );
    assert_eq!(panel(dir.path()).len(), 12);
    let (stdout, _) = expect(
        &run(dir.path(), &["personas", "import", file.to_str().unwrap()]),
        0,
    );
    assert!(stdout.contains("imported 14 personas"), "{stdout}");
    assert_eq!(panel(dir.path()), builtin_panel());

    // --merge adds the records; ids that are taken get new ones.
    let (stdout, stderr) = expect(
        &run(
            dir.path(),
            &["personas", "import", file.to_str().unwrap(), "--merge"],
        ),
        0,
    );
    assert!(stdout.contains("the panel now has 28"), "{stdout}");
    assert!(
        stderr.contains("record 1 (id 1): id 1 is taken by Maria Lopez: imported as #15"),
        "{stderr}"
    );
    let merged = panel(dir.path());
    assert_eq!(ids(&merged), (1..=28).collect::<Vec<_>>());
    assert_eq!(merged[14].name, "Maria Lopez");
}

#[test]
fn csv_export_quotes_awkward_cells_and_imports_back() {
    let dir = fresh();
    let mut awkward = persona_json(
        "Ana \"Nana\" Silva, RN\nof Porto",
        "Nurse, \"night\" shift",
        "Low",
    );
    awkward["bio"] = json!("Sings; loudly");
    awkward["goals"] = json!(["fewer logins", "sleep"]);
    let file = write(dir.path(), "ana.json", &awkward.to_string());
    let (stdout, _) = expect(
        &run(
            dir.path(),
            &["personas", "add", "--json", file.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(stdout, "added #15 Ana \"Nana\" Silva, RN\nof Porto\n");

    let (csv, _) = expect(
        &run(dir.path(), &["personas", "export", "--format", "csv"]),
        0,
    );
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "id,name,occupation,location,tech_proficiency,behavioral_traits,age,bio,goals"
    );
    assert!(
        csv.contains(
            "\n15,\"Ana \"\"Nana\"\" Silva, RN\nof Porto\",\"Nurse, \"\"night\"\" shift\",\"Porto, Portugal\",Low,careful; works nights,44,Sings; loudly,\"[\"\"fewer logins\"\",\"\"sleep\"\"]\"\n"
        ),
        "{csv}"
    );
    assert!(csv.contains("\n1,Maria Lopez,ICU nurse,\"Madrid, Spain\",Medium,"));

    let before = panel(dir.path());
    let file = dir.path().join("panel.csv");
    expect(
        &run(
            dir.path(),
            &["personas", "export", "--out", file.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        csv,
        "format from .csv"
    );
    expect(&run(dir.path(), &["personas", "rm", "15", "1"]), 0);
    expect(
        &run(dir.path(), &["personas", "import", file.to_str().unwrap()]),
        0,
    );
    assert_eq!(panel(dir.path()), before);

    // A CSV from stdin is recognised by its content.
    expect(
        &run_with_stdin(dir.path(), &["personas", "import", "-"], &csv),
        0,
    );
    assert_eq!(panel(dir.path()), before);
    // A broken CSV names the line.
    let (_, stderr) = expect(
        &run_with_stdin(
            dir.path(),
            &["personas", "import", "-"],
            &format!("{header}\n1,\"open"),
        ),
        1,
    );
    assert!(
        stderr.contains("stdin: CSV line 2: a quoted cell is not closed"),
        "{stderr}"
    );
}

#[test]
fn add_show_edit_and_rm() {
    let dir = fresh();
    let file = write(
        dir.path(),
        "new.json",
        &json!([
            persona_json("Rita Costa", "Pharmacist", "Medium"),
            persona_json("Lia Matos", "Teacher", "High")
        ])
        .to_string(),
    );
    let (stdout, _) = expect(
        &run(
            dir.path(),
            &["personas", "add", "--json", file.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(stdout, "added #15 Rita Costa\nadded #16 Lia Matos\n");

    // One object from stdin, with a taken id and an empty name: both reported.
    let mut clash = persona_json("", "Cook", "Low");
    clash["id"] = json!(3);
    let (_, stderr) = expect(
        &run_with_stdin(
            dir.path(),
            &["personas", "add", "--json", "-"],
            &clash.to_string(),
        ),
        1,
    );
    assert!(
        stderr.contains("stdin: 1 of 1 records are invalid; nothing was added"),
        "{stderr}"
    );
    assert!(
        stderr.contains("record 1 (id 3): field `id`: id 3 is taken by #3 Priya Raman"),
        "{stderr}"
    );
    assert!(stderr.contains("record 1 (id 3): field `name`: must not be empty"));

    let (stdout, _) = expect(&run(dir.path(), &["personas", "show", "16"]), 0);
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["name"], "Lia Matos");
    assert_eq!(shown["age"], 44);

    let (stdout, _) = expect(
        &run(
            dir.path(),
            &[
                "personas",
                "edit",
                "16",
                "--set",
                "tech_proficiency=low",
                "--set",
                "age=",
                "--set",
                "goals=fewer forms; a quiet staff room",
                "--set",
                "bio=Teaches maths.",
                "--set",
                "behavioral_traits=patient;plans ahead",
            ],
        ),
        0,
    );
    assert!(stdout.starts_with("edited #16 Lia Matos\n"), "{stdout}");
    assert!(
        stdout.contains("  tech_proficiency: \"High\" → \"Low\""),
        "{stdout}"
    );
    assert!(stdout.contains("  age: 44 → (none)"), "{stdout}");
    let (stdout, _) = expect(&run(dir.path(), &["personas", "show", "16"]), 0);
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["tech_proficiency"], "Low");
    assert_eq!(shown.get("age"), None);
    assert_eq!(shown["goals"], json!(["fewer forms", "a quiet staff room"]));
    assert_eq!(shown["bio"], "Teaches maths.");
    assert_eq!(
        shown["behavioral_traits"],
        json!(["patient", "plans ahead"])
    );

    // Errors change nothing and say why.
    let file_before = std::fs::read_to_string(main_file(dir.path())).unwrap();
    let (_, stderr) = expect(
        &run(dir.path(), &["personas", "edit", "99", "--set", "name=X"]),
        1,
    );
    assert!(
        stderr.contains("no persona with id 99 (ids: 1-16;")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    let (_, stderr) = expect(
        &run(
            dir.path(),
            &[
                "personas",
                "edit",
                "16",
                "--set",
                "tech_proficiency=Expert",
                "--set",
                "name= ",
                "--set",
                "age=200",
            ],
        ),
        1,
    );
    assert!(
        stderr.contains("persona #16 Lia Matos was not changed:"),
        "{stderr}"
    );
    for line in [
        "field `tech_proficiency`: \"Expert\" is not Low, Medium or High",
        "field `name`: must not be empty",
        "field `age`: 200 is not a plausible age",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    // The bio has the TUI form's cap: the rules are the core's, shared.
    let long_bio = format!("bio={}", "b".repeat(601));
    let (_, stderr) = expect(
        &run(dir.path(), &["personas", "edit", "16", "--set", &long_bio]),
        1,
    );
    assert!(
        stderr.contains("field `bio`: longer than 600 characters"),
        "{stderr}"
    );
    let (_, stderr) = expect(
        &run(dir.path(), &["personas", "edit", "16", "--set", "name"]),
        2,
    );
    assert!(stderr.contains("not FIELD=VALUE"), "{stderr}");
    let (_, stderr) = expect(&run(dir.path(), &["personas", "show", "99"]), 1);
    assert!(stderr.contains("no persona with id 99"), "{stderr}");
    let (_, stderr) = expect(&run(dir.path(), &["personas", "rm", "16", "99"]), 1);
    assert!(stderr.contains("nothing was deleted"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(main_file(dir.path())).unwrap(),
        file_before
    );

    let (stdout, stderr) = expect(&run(dir.path(), &["personas", "rm", "16"]), 0);
    assert_eq!(stdout, "deleted #16 Lia Matos (Teacher, Porto, Portugal)\n");
    let backup = dir.path().join("personas_backup.json");
    assert!(
        stderr.contains(&format!(
            "`persona-sim personas restore {}` brings it back",
            backup.display()
        )),
        "{stderr}"
    );
    assert_eq!(ids(&panel(dir.path())), (1..=15).collect::<Vec<_>>());
    let kept = parse_panel(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    assert_eq!(kept.last().unwrap().name, "Lia Matos");
    expect(&run(dir.path(), &["personas", "show", "16"]), 1);
}

#[test]
fn search_prints_the_matches() {
    let dir = fresh();
    let file = write(
        dir.path(),
        "nurse.json",
        &persona_json("Élodie Durand", "Night nurse", "Low").to_string(),
    );
    expect(
        &run(
            dir.path(),
            &["personas", "add", "--json", file.to_str().unwrap()],
        ),
        0,
    );
    let (stdout, _) = expect(&run(dir.path(), &["personas", "search", "nurse low"]), 0);
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].starts_with("ID  NAME"));
    assert!(rows[1].starts_with("15  Élodie Durand"), "{stdout}");
    // Words as separate arguments are one query; a filter narrows it.
    let (stdout, _) = expect(
        &run(dir.path(), &["personas", "search", "nurse", "prof:medium"]),
        0,
    );
    assert!(
        stdout.contains("Maria Lopez") && !stdout.contains("Élodie"),
        "{stdout}"
    );
    let (stdout, stderr) = expect(&run(dir.path(), &["personas", "search", "zzzz"]), 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no persona matches \"zzzz\""), "{stderr}");
}

#[test]
fn stats_as_text_and_json() {
    let dir = fresh();
    let (stdout, _) = expect(&run(dir.path(), &["personas", "stats"]), 0);
    assert!(stdout.starts_with("14 personas\n"), "{stdout}");
    for needle in [
        "\nTech proficiency\n",
        "\nCountries (14)\n",
        "\nOccupations (14)\n",
        "\nTraits (",
        "\nAges",
        "\nDiversity\n",
        "█",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  Low ") && l.contains('%')),
        "{stdout}"
    );
    let (stdout, _) = expect(&run(dir.path(), &["personas", "stats", "--json"]), 0);
    let stats: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(stats["total"], 14);
    let levels: Vec<&str> = stats["by_proficiency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["Low", "Medium", "High"]);
    assert_eq!(stats["diversity"]["countries"], 14);
}

#[test]
fn backup_then_restore_keeps_the_replaced_file() {
    let dir = fresh();
    let (stdout, stderr) = expect(&run(dir.path(), &["personas", "backup"]), 0);
    let backup = PathBuf::from(stdout.trim());
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("personas_backup_") && name.ends_with(".json") && name.len() == 36,
        "{name}"
    );
    assert_eq!(backup.parent(), Some(dir.path()));
    assert!(stderr.contains("backed up 14 personas"), "{stderr}");
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        std::fs::read(main_file(dir.path())).unwrap()
    );

    expect(&run(dir.path(), &["personas", "rm", "1", "2", "3"]), 0);
    // Without a terminal and without --yes: refused, nothing changed.
    let (_, stderr) = expect(&run(dir.path(), &["personas", "restore"]), 1);
    assert!(
        stderr.contains(&format!(
            "Replace 11 personas with 14 from {}?",
            backup.display()
        )) && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(panel(dir.path()).len(), 11);

    let (stdout, _) = expect(&run(dir.path(), &["personas", "restore", "--yes"]), 0);
    assert!(
        stdout.starts_with(&format!("restored 14 personas from {}\n", backup.display())),
        "{stdout}"
    );
    assert_eq!(panel(dir.path()), builtin_panel());
    let replaced: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("personas.json.replaced-")
        })
        .collect();
    assert_eq!(replaced.len(), 1);
    assert!(
        stdout.contains(&format!(
            "the replaced panel (11 personas) is kept as {}",
            replaced[0].display()
        )),
        "{stdout}"
    );
    let kept = parse_panel(&std::fs::read_to_string(&replaced[0]).unwrap()).unwrap();
    assert_eq!(ids(&kept), (4..=14).collect::<Vec<_>>());

    // A named file that is not a panel is refused, naming it.
    let bad = write(dir.path(), "bad.json", "[{\"id\": 1}]");
    let (_, stderr) = expect(
        &run(
            dir.path(),
            &["personas", "restore", bad.to_str().unwrap(), "--yes"],
        ),
        1,
    );
    assert!(
        stderr.contains("bad.json is not a valid persona panel: record 1 (id 1): field `name`"),
        "{stderr}"
    );
    assert_eq!(panel(dir.path()), builtin_panel());
}

#[test]
fn a_panel_named_with_personas_gets_its_own_backups() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("shared/team.json");
    // A named panel's folder must exist (a missing one is refused as a typo).
    std::fs::create_dir_all(team.parent().unwrap()).unwrap();
    let team_arg = team.to_str().unwrap();
    expect(
        &run(
            dir.path(),
            &["--personas", team_arg, "personas", "rm", "14"],
        ),
        0,
    );
    assert_eq!(
        parse_panel(&std::fs::read_to_string(&team).unwrap())
            .unwrap()
            .len(),
        13
    );
    assert!(dir.path().join("shared/team_backup.json").exists());
    assert!(!main_file(dir.path()).exists());
    let (stdout, stderr) = expect(
        &run(dir.path(), &["--personas", team_arg, "personas", "backup"]),
        0,
    );
    assert!(
        stdout.trim().starts_with(&format!(
            "{}/team_backup_",
            dir.path().join("shared").display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "persona-sim --personas {team_arg} personas restore"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_saves_the_new_personas_unless_dry_run() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = fresh();
    let before = std::fs::read_to_string(main_file(dir.path())).unwrap();
    let out = run_against(
        dir.path(),
        &server,
        &[
            "personas",
            "generate",
            "--brief",
            "farmers",
            "--count",
            "3",
            "--dry-run",
        ],
    )
    .await;
    let (stdout, stderr) = expect(&out, 0);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(
        stderr.contains("3 of 3 generated (dry run: nothing was saved)"),
        "{stderr}"
    );
    let out = run_against(
        dir.path(),
        &server,
        &["personas", "generate", "--brief", "a baker", "--dry-run"],
    )
    .await;
    let (stdout, stderr) = expect(&out, 0);
    assert!(stdout.contains("\n15  Mock Person"), "{stdout}");
    assert!(
        stderr.contains("[1/1] accepted #15 Mock Person"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(main_file(dir.path())).unwrap(),
        before
    );

    let out = run_against(
        dir.path(),
        &server,
        &[
            "personas",
            "generate",
            "--brief",
            "night-shift nurses",
            "--count",
            "3",
        ],
    )
    .await;
    let (stdout, stderr) = expect(&out, 0);
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(
        rows[1..].iter().all(|r| r.contains("Mock Person")),
        "{stdout}"
    );
    assert_eq!(stderr.matches("] accepted #").count(), 3, "{stderr}");
    assert!(
        stderr.contains("3 of 3 generated; saved to") && stderr.contains("(the panel now has 17)"),
        "{stderr}"
    );
    let saved = panel(dir.path());
    assert_eq!(ids(&saved), (1..=17).collect::<Vec<_>>());
    assert!(
        saved[14..]
            .iter()
            .all(|p| p.name.starts_with("Mock Person"))
    );
    assert!(saved[14].extra.contains_key("bio"));
    assert_eq!(&saved[..14], &builtin_panel()[..]);
    let prompts: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.body["messages"][1]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(prompts.len(), 7);
    assert!(
        prompts[4..]
            .iter()
            .all(|p| p.contains("night-shift nurses"))
    );
    // The previous panel is the backup.
    let backup = std::fs::read_to_string(dir.path().join("personas_backup.json")).unwrap();
    assert_eq!(parse_panel(&backup).unwrap(), builtin_panel());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_that_fails_for_all_exits_1_and_saves_nothing() {
    // Every request gets an HTTP 500.
    let server = MockServer::scripted(Vec::new()).await;
    let dir = fresh();
    let out = run_against(
        dir.path(),
        &server,
        &["personas", "generate", "--brief", "x", "--count", "2"],
    )
    .await;
    let (stdout, stderr) = expect(&out, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.matches("] failed: ").count(), 2, "{stderr}");
    assert!(
        stderr.contains("persona-sim: error: 0 of 2 generated; 2 failed: #1: "),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was saved"), "{stderr}");
    assert_eq!(panel(dir.path()), builtin_panel());
}

#[test]
fn generate_without_a_backend_says_how_to_get_one() {
    let dir = fresh();
    let (_, stderr) = expect(
        &run(dir.path(), &["personas", "generate", "--brief", "x"]),
        1,
    );
    assert!(
        stderr.contains("the local model is not installed")
            || stderr.contains("no LLM backend is configured"),
        "{stderr}"
    );
    assert_eq!(panel(dir.path()), builtin_panel());
}

/// Runs `persona-sim ARGS` on a pseudo-terminal (util-linux `script`),
/// typing `input`; `None` when `script` is not installed.
fn run_on_terminal(dir: &Path, args: &[&str], input: &str) -> Option<Output> {
    let available = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PERSONA_SIM_DATA_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn restore_on_a_terminal_asks_first() {
    let dir = fresh();
    let backup = expect(&run(dir.path(), &["personas", "backup"]), 0).0;
    expect(&run(dir.path(), &["personas", "rm", "1"]), 0);
    let Some(out) = run_on_terminal(dir.path(), &["personas", "restore"], "n\n") else {
        return;
    };
    // `script` merges the program's stdout and stderr into its own stdout.
    let (stdout, _) = expect(&out, 1);
    assert!(
        stdout.contains(&format!(
            "Replace 13 personas with 14 from {}? [y/N]",
            backup.trim()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("restore cancelled; nothing was changed"),
        "{stdout}"
    );
    assert_eq!(panel(dir.path()).len(), 13);
    let out = run_on_terminal(dir.path(), &["personas", "restore"], "y\n").unwrap();
    let (stdout, _) = expect(&out, 0);
    assert!(stdout.contains("restored 14 personas from"), "{stdout}");
    assert_eq!(panel(dir.path()), builtin_panel());
}

/// The README's `personas search` example finds its persona on the
/// built-in panel (its only nurse has medium proficiency).
#[test]
fn the_readme_search_example_finds_the_nurse() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let example = readme
        .lines()
        .find_map(|l| l.strip_prefix("persona-sim personas search "))
        .expect("a search example in the README");
    let words: Vec<&str> = example
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let dir = fresh();
    let mut args = vec!["personas", "search"];
    args.extend(&words);
    let (stdout, _) = expect(&run(dir.path(), &args), 0);
    assert!(stdout.contains("Maria Lopez"), "{words:?}: {stdout}");
}

#[test]
fn edit_refuses_a_mistyped_field_and_names_the_right_one() {
    let dir = fresh();
    let before = std::fs::read_to_string(main_file(dir.path())).unwrap();
    let (_, stderr) = expect(
        &run(
            dir.path(),
            &["personas", "edit", "1", "--set", "ocupation=Surgeon"],
        ),
        2,
    );
    assert!(
        stderr.contains("\"ocupation\"") && stderr.contains("did you mean `occupation`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(main_file(dir.path())).unwrap(),
        before
    );
    // A name near no field is an extra field, as documented.
    expect(
        &run(
            dir.path(),
            &["personas", "edit", "1", "--set", "hobbies=chess"],
        ),
        0,
    );
}

/// A panel saved by a spreadsheet: a UTF-8 byte order mark, CRLF line
/// ends, and a quoted cell holding a comma, quotes and a line break.
#[test]
fn a_spreadsheet_csv_with_bom_and_crlf_imports_and_bad_rows_name_their_line() {
    let dir = fresh();
    let csv = "\u{feff}id,name,occupation,location,tech_proficiency,behavioral_traits,age,bio\r\n\
               3,Rui Costa,\"Fisherman, retired\",\"Aveiro,\r\nPortugal\",Low,\"says \"\"no\"\"; patient\",71,\"boats; \"\"nets\"\"\"\r\n\
               \r\n\
               7,Lea Roth,Teacher,Bern,High,,,\r\n";
    let file = write(dir.path(), "sheet.csv", csv);
    expect(
        &run(dir.path(), &["personas", "import", file.to_str().unwrap()]),
        0,
    );
    let imported = panel(dir.path());
    assert_eq!(ids(&imported), [3, 7]);
    assert_eq!(imported[0].occupation, "Fisherman, retired");
    assert_eq!(imported[0].location, "Aveiro,\r\nPortugal");
    assert_eq!(imported[0].behavioral_traits, ["says \"no\"", "patient"]);
    assert_eq!(imported[0].age, Some(71));
    assert_eq!(imported[0].extra["bio"], "boats; \"nets\"");
    assert_eq!(
        (imported[1].name.as_str(), imported[1].age),
        ("Lea Roth", None)
    );

    // A row with a cell too few, after a quoted line break and a blank
    // line: the error names the row's own line in the file, and nothing is
    // imported.
    let broken = csv.replace(
        "7,Lea Roth,Teacher,Bern,High,,,",
        "7,Lea Roth,Teacher,Bern,High,,",
    );
    let file = write(dir.path(), "broken.csv", &broken);
    let (_, stderr) = expect(
        &run(dir.path(), &["personas", "import", file.to_str().unwrap()]),
        1,
    );
    assert!(
        stderr.contains("broken.csv: CSV line 5: 7 cells where the header has 8 columns"),
        "{stderr}"
    );
    assert_eq!(ids(&panel(dir.path())), [3, 7]);
}
