//! `longrun.toml`: the command line's flags, written down. Each top-level
//! key is a flag's long name (`data-dir = "/var/lib/longrun"`); the file is
//! applied as the flag's `LONGRUN_*` variable wherever that variable is not
//! already set, so the order of precedence is flags, then environment, then
//! file, then defaults, and every value goes through the same validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, Value};

/// One setting read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The flag's long name, as written in the file.
    pub key: String,
    /// The environment variable the flag reads.
    pub env: String,
    /// The value, in the form the flag takes on the command line.
    pub value: String,
    /// Where it was written, for error messages: `path:line`.
    pub origin: String,
}

/// The config file named by `--config PATH` / `--config=PATH` in `args`, or
/// by `LONGRUN_CONFIG`. Looked for before clap parses, so the file can
/// supply the values clap then reads.
pub fn named_path(args: &[String], env: Option<String>) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    env.filter(|path| !path.is_empty()).map(PathBuf::from)
}

/// Reads the settings of `path`. `known` maps each flag's long name to its
/// environment variable; any other key is an error naming the key and line.
pub fn read(path: &Path, known: &BTreeMap<String, String>) -> Result<Vec<Setting>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&text, &path.display().to_string(), known)
}

fn parse(text: &str, name: &str, known: &BTreeMap<String, String>) -> Result<Vec<Setting>, String> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let document = Document::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(span.start));
        format!("{name}:{line}: {}", e.message().trim())
    })?;
    let table = document.as_table();
    let mut settings = Vec::new();
    for (key, item) in table.iter() {
        let line = table.get_key_value(key).and_then(|(k, _)| k.span()).map_or(1, |span| line_of(span.start));
        let origin = format!("{name}:{line}");
        let Some(env) = known.get(key) else {
            return Err(format!("{origin}: unknown key '{key}' (the keys are the flags of `longrun serve --help`)"));
        };
        let value =
            flag_value(item).ok_or_else(|| format!("{origin}: '{key}' must be a string, number, boolean or array"))?;
        settings.push(Setting { key: key.to_owned(), env: env.clone(), value, origin });
    }
    Ok(settings)
}

/// A TOML value as the flag would take it: arrays become comma lists, as
/// the list flags (`--retention-by-scope a=1d,b=2d`) take them.
fn flag_value(item: &Item) -> Option<String> {
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.value().clone()),
            Value::Integer(i) => Some(i.value().to_string()),
            Value::Float(f) => Some(f.value().to_string()),
            Value::Boolean(b) => Some(b.value().to_string()),
            Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|v| v.join(",")),
            Value::Datetime(_) | Value::InlineTable(_) => None,
        }
    }
    item.as_value().and_then(scalar)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, so an
/// effective configuration can be printed and pasted without leaking.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Flags whose whole value is secret (none yet besides URL passwords).
const SECRET_FLAGS: &[&str] = &[];

/// The effective settings of `command` as parsed into `matches`, one
/// `key = "value"  # source` line each (valid TOML, secrets redacted).
pub fn describe_effective(command: &clap::Command, matches: &clap::ArgMatches, from_file: &[Setting]) -> String {
    use clap::parser::ValueSource;
    let mut lines = Vec::new();
    for arg in command.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
        if long == "config" || long == "help" {
            continue;
        }
        let Some(raw) = matches.get_raw(id) else { continue };
        // Joined as the flag splits them (`;` for --jwt-issuer, whose values hold commas).
        let delimiter = arg.get_value_delimiter().unwrap_or(',').to_string();
        let value = raw.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(&delimiter);
        let value = if SECRET_FLAGS.contains(&long) { "***".to_owned() } else { redact_url(&value) };
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => match from_file.iter().find(|s| Some(&s.env) == env.as_ref()) {
                Some(setting) => format!("file {}", setting.origin),
                None => format!("env {}", env.unwrap_or_default()),
            },
            _ => "default".to_owned(),
        };
        lines.push(format!("{long} = {}  # {source}", toml_value(&value)));
    }
    lines.join("\n")
}

/// A flag's value as TOML writes it: numbers and booleans bare, the rest
/// quoted (a file written from the output reads back the same).
fn toml_value(value: &str) -> String {
    let bare = value == "true"
        || value == "false"
        || value.parse::<i64>().is_ok()
        || (value.parse::<f64>().is_ok_and(f64::is_finite) && value.contains('.'));
    if bare { value.to_owned() } else { serde_json::to_string(value).expect("a string serializes") }
}

/// Where a value clap refused came from, when it came from the file:
/// `path:line` of the setting behind the flag named in clap's error.
pub fn origin_of_refused(error: &clap::Error, from_file: &[Setting]) -> Option<String> {
    let clap::error::ContextValue::String(arg) = error.get(clap::error::ContextKind::InvalidArg)? else { return None };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    from_file.iter().find(|s| s.key == long).map(|s| s.origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeMap<String, String> {
        [("listen", "LONGRUN_LISTEN"), ("demo", "LONGRUN_DEMO"), ("retention-by-scope", "LONGRUN_RETENTION_BY_SCOPE")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn maps_each_key_to_its_flag_variable_with_its_line() {
        let text = "# longrun\nlisten = \"0.0.0.0:80\"\n\ndemo = true\nretention-by-scope = [\"projects/a=2d\", \"projects/b=3d\"]\n";
        let settings = parse(text, "l.toml", &known()).unwrap();
        let seen: Vec<_> = settings.iter().map(|s| (s.env.as_str(), s.value.as_str(), s.origin.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("LONGRUN_LISTEN", "0.0.0.0:80", "l.toml:2"),
                ("LONGRUN_DEMO", "true", "l.toml:4"),
                ("LONGRUN_RETENTION_BY_SCOPE", "projects/a=2d,projects/b=3d", "l.toml:5"),
            ]
        );
    }

    #[test]
    fn an_unknown_key_names_itself_and_its_line() {
        let error = parse("listen = \"x\"\nretentoin = \"7d\"\n", "l.toml", &known()).unwrap_err();
        assert!(error.starts_with("l.toml:2: unknown key 'retentoin'"), "{error}");
        let error = parse("[listen]\nport = 1\n", "l.toml", &known()).unwrap_err();
        assert!(error.starts_with("l.toml:1: 'listen' must be"), "{error}");
        let error = parse("listen = \n", "l.toml", &known()).unwrap_err();
        assert!(error.starts_with("l.toml:1: "), "{error}");
    }

    #[test]
    fn finds_the_named_file_in_flags_before_the_environment() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(named_path(&args(&["serve", "--config", "a.toml"]), Some("b.toml".into())), Some("a.toml".into()));
        assert_eq!(named_path(&args(&["serve", "--config=a.toml"]), None), Some("a.toml".into()));
        assert_eq!(named_path(&args(&["serve"]), Some("b.toml".into())), Some("b.toml".into()));
        assert_eq!(named_path(&args(&["serve"]), Some(String::new())), None);
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact_url("postgres://u:s3cret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("./data"), "./data");
    }
}
