//! Questions on standard input: a yes/no with a default, for `uninstall` and the `edit`
//! verbs. End of input (a script, CI) answers no, so that nothing loops or acts unasked.

use std::io::{BufRead, Write};

/// Prints `question` and reads one line: `y`/`yes` or `n`/`no` (any case); anything else,
/// an empty line is `default`; end of input is no.
pub fn yes_no(question: &str, default: bool) -> bool {
    let hint = if default { "[Y/n]" } else { "[y/N]" };
    print!("{question} {hint} ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let answer = match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => {
            println!();
            return false;
        }
        Ok(_) => line.trim().to_ascii_lowercase(),
    };
    match answer.as_str() {
        "y" | "yes" => true,
        "n" | "no" => false,
        _ => default,
    }
}
