//! Property tests of the codec: any bytes decode without a panic, and every valid frame
//! survives an encode and a decode unchanged.

use deeplo_agent::protocol::{
    self, Container, DockerFacts, ExitStatus, Fingerprint, Frame, Hello, MAX_IN_FLIGHT_REQUESTS, RequestId, Resume,
    Stream, ToAgent, ToDaemon, Welcome,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..512)
}

fn id() -> impl Strategy<Value = RequestId> {
    any::<u64>().prop_map(RequestId)
}

fn absolute_path() -> impl Strategy<Value = String> {
    vec("[a-zA-Z0-9._-]{1,8}", 0..4).prop_map(|parts| format!("/{}", parts.join("/")))
}

fn bundle_path() -> impl Strategy<Value = String> {
    vec("[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,7}", 1..4).prop_map(|parts| parts.join("/"))
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    (text(), text(), text(), option::of(text()), option::of(text()), option::of(any::<u64>()), option::of(any::<u64>()))
        .prop_map(|(os, kernel, arch, docker_version, compose_version, disk_free_bytes, memory_bytes)| Fingerprint {
            os,
            kernel,
            arch,
            docker_version,
            compose_version,
            disk_free_bytes,
            memory_bytes,
        })
}

fn exec() -> impl Strategy<Value = ToAgent> {
    let env = vec(("[A-Z_][A-Z0-9_]{0,8}", text()), 0..4);
    (id(), "[a-z/][a-z0-9/_-]{0,11}", vec(text(), 0..6), env, option::of(absolute_path()), any::<bool>())
        .prop_map(|(id, program, args, env, cwd, stdin)| ToAgent::Exec { id, program, args, env, cwd, stdin })
}

fn to_agent() -> impl Strategy<Value = ToAgent> {
    let welcome = (any::<u16>(), text(), 1..u32::MAX, 1..u32::MAX).prop_map(|(protocol, v, interval, allowance)| {
        ToAgent::Welcome(Welcome {
            protocol,
            daemon_version: v,
            heartbeat_interval_secs: interval,
            heartbeat_allowance: allowance,
        })
    });
    prop_oneof![
        welcome,
        exec(),
        (id(), data()).prop_map(|(id, data)| ToAgent::Stdin { id, data }),
        id().prop_map(|id| ToAgent::StdinEnd { id }),
        id().prop_map(|id| ToAgent::Cancel { id }),
        (id(), absolute_path()).prop_map(|(id, dir)| ToAgent::WriteBundle { id, dir }),
        (id(), bundle_path(), any::<bool>()).prop_map(|(id, path, executable)| ToAgent::BundleFile {
            id,
            path,
            executable
        }),
        (id(), data()).prop_map(|(id, data)| ToAgent::BundleData { id, data }),
        (id(), bundle_path(), "\\PC{1,12}").prop_map(|(id, path, target)| ToAgent::BundleSymlink { id, path, target }),
        id().prop_map(|id| ToAgent::BundleEnd { id }),
        (id(), option::of(text())).prop_map(|(id, project)| ToAgent::DockerFacts { id, project }),
        vec((id(), any::<[u64; 3]>(), any::<bool>()), 0..=MAX_IN_FLIGHT_REQUESTS).prop_map(|requests| {
            let requests = requests
                .into_iter()
                .map(|(id, [stdout, stderr, input], input_ended)| Resume { id, stdout, stderr, input, input_ended })
                .collect();
            ToAgent::Reattach { requests }
        }),
    ]
}

fn exit_status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![any::<i32>().prop_map(ExitStatus::Code), text().prop_map(ExitStatus::Signal), Just(ExitStatus::Unknown)]
}

fn docker_facts() -> impl Strategy<Value = DockerFacts> {
    let container = (text(), text(), text(), text()).prop_map(|(name, service, state, status)| Container {
        name,
        service,
        state,
        status,
    });
    (text(), text(), option::of(text()), vec(container, 0..4)).prop_map(
        |(engine_version, api_version, compose_version, containers)| DockerFacts {
            engine_version,
            api_version,
            compose_version,
            containers,
        },
    )
}

fn to_daemon() -> impl Strategy<Value = ToDaemon> {
    let stream = prop_oneof![Just(Stream::Stdout), Just(Stream::Stderr)];
    prop_oneof![
        (any::<u16>(), text(), fingerprint()).prop_map(|(protocol, agent_version, fingerprint)| {
            ToDaemon::Hello(Hello { protocol, agent_version, fingerprint })
        }),
        Just(ToDaemon::Heartbeat),
        fingerprint().prop_map(ToDaemon::FingerprintUpdate),
        (id(), stream, any::<u64>(), data()).prop_map(|(id, stream, offset, data)| ToDaemon::Output {
            id,
            stream,
            offset,
            data
        }),
        (id(), exit_status()).prop_map(|(id, status)| ToDaemon::Exited { id, status }),
        (id(), text()).prop_map(|(id, message)| ToDaemon::Failed { id, message }),
        id().prop_map(|id| ToDaemon::BundleWritten { id }),
        (id(), docker_facts()).prop_map(|(id, facts)| ToDaemon::Facts { id, facts }),
        (id(), any::<bool>()).prop_map(|(id, running)| ToDaemon::Reattached { id, running }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![to_agent().prop_map(Frame::from), to_daemon().prop_map(Frame::from)]
}

proptest! {
    #[test]
    fn valid_frames_round_trip(frame in frame()) {
        let bytes = protocol::encode(&frame).unwrap();
        prop_assert_eq!(protocol::decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024)) {
        let _ = protocol::decode(&bytes);
    }

    #[test]
    fn damaged_frames_never_panic(frame in frame(), at in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = protocol::encode(&frame).unwrap();
        let at = at % bytes.len();
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        if let Ok(decoded) = protocol::decode(&bytes) {
            // Whatever decodes is a valid frame (not always the same bytes: overlong varints
            // are read as their value).
            let again = protocol::encode(&decoded).unwrap();
            prop_assert_eq!(protocol::decode(&again).unwrap(), decoded);
        }
    }
}
