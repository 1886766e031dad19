use super::*;
use crate::protocol::{
    Container, DockerFacts, ExitStatus, Fingerprint, Hello, MAX_CHUNK_BYTES, RequestId, Resume, Stream, Welcome,
};

fn fingerprint() -> Fingerprint {
    Fingerprint {
        os: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0-28-amd64".into(),
        arch: "x86_64".into(),
        docker_version: Some("27.3.1".into()),
        compose_version: None,
        disk_free_bytes: Some(42 << 30),
        memory_bytes: None,
    }
}

fn to_agent_samples() -> Vec<ToAgent> {
    let id = RequestId(7);
    vec![
        ToAgent::Welcome(Welcome {
            protocol: 1,
            daemon_version: "0.1.0".into(),
            heartbeat_interval_secs: 5,
            heartbeat_allowance: 3,
        }),
        ToAgent::Exec {
            id,
            program: "docker".into(),
            args: vec!["compose".into(), "up".into(), "-d".into(), "it's $(quoted)".into()],
            env: vec![("COMPOSE_PROJECT_NAME".into(), "web".into())],
            cwd: Some("/srv/deeplo/web".into()),
            stdin: true,
        },
        ToAgent::Stdin { id, data: vec![0, 255, b'\n'] },
        ToAgent::StdinEnd { id },
        ToAgent::Cancel { id },
        ToAgent::WriteBundle { id, dir: "/srv/deeplo/web/releases/abc".into() },
        ToAgent::BundleFile { id, path: "compose.yaml".into(), executable: false },
        ToAgent::BundleData { id, data: vec![b'x'; MAX_CHUNK_BYTES] },
        ToAgent::BundleSymlink { id, path: "current".into(), target: "../releases/abc".into() },
        ToAgent::BundleEnd { id },
        ToAgent::DockerFacts { id, project: Some("web".into()) },
        ToAgent::Reattach {
            requests: vec![
                Resume { id: RequestId(1), stdout: 0, stderr: 0, input: 0, input_ended: false },
                Resume { id: RequestId(u64::MAX), stdout: u64::MAX, stderr: 3, input: 1 << 40, input_ended: true },
            ],
        },
    ]
}

fn to_daemon_samples() -> Vec<ToDaemon> {
    let id = RequestId(7);
    vec![
        ToDaemon::Hello(Hello { protocol: 1, agent_version: "0.1.0".into(), fingerprint: fingerprint() }),
        ToDaemon::Heartbeat,
        ToDaemon::FingerprintUpdate(fingerprint()),
        ToDaemon::Output { id, stream: Stream::Stderr, offset: 1 << 33, data: b"pulling\n".to_vec() },
        ToDaemon::Exited { id, status: ExitStatus::Code(-1) },
        ToDaemon::Failed { id, message: "docker: not found in PATH".into() },
        ToDaemon::BundleWritten { id },
        ToDaemon::Facts {
            id,
            facts: DockerFacts {
                engine_version: "27.3.1".into(),
                api_version: "1.47".into(),
                compose_version: Some("2.29.7".into()),
                containers: vec![Container {
                    name: "web-app-1".into(),
                    service: "app".into(),
                    state: "running".into(),
                    status: "Up 3 hours (healthy)".into(),
                }],
            },
        },
        ToDaemon::Reattached { id, running: true },
    ]
}

fn all_samples() -> Vec<Frame> {
    let agent = to_agent_samples().into_iter().map(Frame::from);
    agent.chain(to_daemon_samples().into_iter().map(Frame::from)).collect()
}

#[test]
fn every_message_round_trips() {
    for frame in all_samples() {
        let bytes = encode(&frame).unwrap();
        assert_eq!(decode(&bytes).unwrap(), frame);
    }
    for status in [ExitStatus::Code(0), ExitStatus::Signal("KILL".into()), ExitStatus::Unknown] {
        let frame = Frame::from(ToDaemon::Exited { id: RequestId(0), status });
        assert_eq!(decode(&encode(&frame).unwrap()).unwrap(), frame);
    }
}

#[test]
fn samples_cover_every_kind_and_kinds_match_wire_indexes() {
    let agent: Vec<&str> = to_agent_samples().iter().map(ToAgent::kind).collect();
    assert_eq!(agent, ToAgent::KINDS);
    let daemon: Vec<&str> = to_daemon_samples().iter().map(ToDaemon::kind).collect();
    assert_eq!(daemon, ToDaemon::KINDS);
    for frame in all_samples() {
        let bytes = encode(&frame).unwrap();
        let (direction, kind) = match &frame {
            Frame::ToAgent(m) => (0, ToAgent::KINDS.iter().position(|k| *k == m.kind())),
            Frame::ToDaemon(m) => (1, ToDaemon::KINDS.iter().position(|k| *k == m.kind())),
        };
        assert_eq!((bytes[0], usize::from(bytes[1])), (direction, kind.unwrap()), "{}", frame.kind());
    }
}

#[test]
fn documented_examples_are_the_real_bytes() {
    assert_eq!(encode(&ToAgent::StdinEnd { id: RequestId(300) }.into()).unwrap(), [0x00, 0x03, 0xac, 0x02]);
    assert_eq!(encode(&ToDaemon::Heartbeat.into()).unwrap(), [0x01, 0x01]);
}

#[test]
fn direction_and_wrong_side() {
    let hello = Frame::from(to_daemon_samples().remove(0));
    assert_eq!(hello.direction(), Direction::ToDaemon);
    let err = hello.clone().into_to_agent().unwrap_err();
    assert_eq!(err, ProtocolError::WrongDirection { kind: "Hello" });
    assert_eq!(err.close_code(), CloseCode::ProtocolViolation);
    assert!(hello.into_to_daemon().is_ok());
    let exec = Frame::from(to_agent_samples().remove(1));
    assert_eq!(exec.direction(), Direction::ToAgent);
    assert_eq!(exec.into_to_daemon().unwrap_err(), ProtocolError::WrongDirection { kind: "Exec" });
}

#[test]
fn too_large_is_refused_both_ways() {
    let err = decode(&vec![0; MAX_FRAME_BYTES + 1]).unwrap_err();
    assert_eq!(err, ProtocolError::TooLarge { size: MAX_FRAME_BYTES + 1 });
    assert_eq!(err.close_code(), CloseCode::MessageTooBig);
    let failed = ToDaemon::Failed { id: RequestId(1), message: "x".repeat(MAX_FRAME_BYTES) };
    assert!(matches!(encode(&failed.into()), Err(ProtocolError::TooLarge { .. })));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = encode(&ToDaemon::Heartbeat.into()).unwrap();
    bytes.extend([0, 0]);
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err, ProtocolError::TrailingBytes { count: 2 });
    assert_eq!(err.close_code(), CloseCode::ProtocolViolation);
}

#[test]
fn unknown_kinds_are_told_apart() {
    let next_daemon_kind = u8::try_from(ToDaemon::KINDS.len()).unwrap();
    let err = decode(&[0x01, next_daemon_kind, 0x05]).unwrap_err();
    let known = ToDaemon::KINDS.len();
    assert_eq!(
        err,
        ProtocolError::UnknownMessage { direction: Direction::ToDaemon, index: known.try_into().unwrap(), known }
    );
    assert_eq!(err.close_code(), CloseCode::UnknownMessage);
    // A two-byte varint index (200), as a much newer peer would send.
    let err = decode(&[0x00, 0xc8, 0x01]).unwrap_err();
    assert!(matches!(err, ProtocolError::UnknownMessage { direction: Direction::ToAgent, index: 200, .. }), "{err:?}");
}

#[test]
fn malformed_input_is_refused() {
    for bytes in [
        &[][..],                               // empty
        &[0x02, 0x00],                         // no third direction
        &[0x00],                               // direction without kind
        &[0x00, 0x03],                         // StdinEnd without its id
        &[0x00, 0x80, 0x80, 0x80, 0x80, 0x80], // varint too long
        &[0x01, 0x03, 0x01, 0x02],             // Output with stream index 2
        &[0x01, 0x05, 0x01, 0x02, 0xff, 0xfe], // Failed with bad UTF-8
    ] {
        let err = decode(bytes).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed { .. }), "{bytes:?}: {err:?}");
        assert_eq!(err.close_code(), CloseCode::ProtocolViolation);
    }
}

#[test]
fn semantic_limits_are_refused_on_both_ends() {
    let oversized = Frame::from(ToAgent::Stdin { id: RequestId(1), data: vec![0; MAX_CHUNK_BYTES + 1] });
    let err = encode(&oversized).unwrap_err();
    assert!(matches!(err, ProtocolError::Invalid { kind: "Stdin", .. }), "{err:?}");
    // The same frame made by a peer that does not check: decode refuses it too.
    let bytes = postcard::to_stdvec(&oversized).unwrap();
    let err = decode(&bytes).unwrap_err();
    assert!(matches!(err, ProtocolError::Invalid { kind: "Stdin", .. }), "{err:?}");
    assert_eq!(err.close_code(), CloseCode::ProtocolViolation);
    let empty_program = Frame::from(ToAgent::Exec {
        id: RequestId(1),
        program: String::new(),
        args: vec![],
        env: vec![],
        cwd: None,
        stdin: false,
    });
    let err = decode(&postcard::to_stdvec(&empty_program).unwrap()).unwrap_err();
    assert!(err.to_string().contains("program is empty"), "{err}");
}

#[test]
fn overlong_varints_are_accepted() {
    // Postcard reads a varint with needless continuation bytes as its value; writers never
    // produce one, readers must accept it.
    assert_eq!(decode(&[0x00, 0x03, 0xac, 0x00]).unwrap(), ToAgent::StdinEnd { id: RequestId(44) }.into());
    assert_eq!(decode(&[0x80, 0x00, 0x83, 0x00, 0x01]).unwrap(), ToAgent::StdinEnd { id: RequestId(1) }.into());
}
