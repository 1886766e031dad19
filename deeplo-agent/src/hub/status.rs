//! The protocol's exit status as deeplo-core's.

use deeplo_core::ExitStatus;

use crate::protocol;

/// The signals a command is commonly killed by, by the name the protocol carries.
const KNOWN_SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "PROF", "QUIT", "SEGV", "STOP",
    "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// The `&'static str` for a signal named by the agent (`TERM`; a leading `SIG` is accepted
/// too): the name itself for the usual POSIX signals, `"other"` for any other (as the SSH
/// transport says for a signal it cannot name).
pub fn signal_name(name: &str) -> &'static str {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    KNOWN_SIGNALS.iter().copied().find(|known| *known == bare).unwrap_or("other")
}

/// The protocol's status as deeplo-core's.
pub(super) fn convert(status: &protocol::ExitStatus) -> ExitStatus {
    match status {
        protocol::ExitStatus::Code(code) => ExitStatus::Code(*code),
        protocol::ExitStatus::Signal(name) => ExitStatus::Signal(signal_name(name)),
        protocol::ExitStatus::Unknown => ExitStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name("TERM"), "TERM");
        assert_eq!(signal_name("SIGKILL"), "KILL");
        assert_eq!(signal_name("RTMIN+3"), "other");
        assert_eq!(convert(&protocol::ExitStatus::Signal("SEGV".into())), ExitStatus::Signal("SEGV"));
        assert_eq!(convert(&protocol::ExitStatus::Code(3)), ExitStatus::Code(3));
    }
}
