// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "deployctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "deployctl", targets: ["deployctl"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The agent and the server as long-running services with graceful shutdown on SIGTERM; brings swift-log.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // SHA-256 and HMAC for SigV4, and the keys swift-certificates signs with (it accepts 3.12-5.x).
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // deployctl server (issue 10): Hummingbird 2 on SwiftNIO serves HTTP/1.1 (no hand-written HTTP parsing),
        // swift-nio-ssl does TLS, swift-certificates makes the CA and server certificates. Hummingbird's default
        // traits pull swift-configuration, which we do not use: off, for build time.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        // The remote CLI's HTTPS client (custom CA bundles, streaming bodies, connection pooling).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // GET /metrics in Prometheus text format (request counts, latency histograms per operation).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // API-shaped values, the ordered JSON tree, the service errors and the generated CodeDeployAPI protocol.
        .target(name: "DeployModel"),
        // What /proc says about this host (mount sources, command lines), for messages that name a device or a process.
        .target(name: "ProcFS"),
        // A load balancer driven at run time: HAProxy's runtime API (drain, ready, health), for traffic control.
        .target(name: "TrafficControl", dependencies: ["ControlPlane", "HostCommandModel"]),
        // What the agent and the control plane share: the lifecycle events and the host-command records.
        .target(name: "HostCommandModel"),
        // The store protocol in domain terms, its records, and an in-memory store for tests.
        .target(name: "DeployStore", dependencies: ["DeployModel"]),
        // The store on the SQLite state file: schema, migrations, SQL. GRDB is imported here only.
        .target(
            name: "DeployStoreSQLite", dependencies: ["DeployStore", "DeployModel", "ProcFS", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: [.enableUpcomingFeature("InternalImportsByDefault")]),
        // libpq from the system, loaded on first use (libpq-dev to build this target only, libpq5 to run).
        .target(name: "CLibPQ", cSettings: [.unsafeFlags(["-I/usr/include/postgresql"])]),
        // The store on PostgreSQL, for several server replicas: schema, migrations, SQL, LISTEN/NOTIFY. libpq is used here only.
        .target(name: "DeployStorePostgres", dependencies: ["DeployStore", "DeployModel", "CLibPQ"]),
        // The built-in S3-like artifact store beside the state file.
        .target(name: "ArtifactStore", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // libarchive from the system (libarchive-dev to build, libarchive13 to run), loaded on first use.
        .target(name: "CArchive"),
        // appspec.yml: parsed into typed values with source positions, validated with every finding collected.
        .target(name: "AppSpec", dependencies: ["DeployModel", "HostCommandModel", .product(name: "Yams", package: "Yams")]),
        // Revision bundles (zip, tar, tgz): list, safe extraction, creation.
        .target(name: "Bundles", dependencies: ["CArchive"]),
        // Checking and pushing revisions: appspec + bundle together.
        .target(name: "Revisions", dependencies: ["AppSpec", "Bundles", "ArtifactStore", "DeployModel"]),
        // The on-host deployment engine: deployment root, bundle download, install, hooks, script logs.
        .target(name: "CAgentSupport"),
        .target(
            name: "Agent",
            dependencies: [
                "AppSpec", "Bundles", "CAgentSupport", "DeployModel", "HostCommandModel", "ArtifactStore", "ProcFS",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // The API operations over the store.
        .target(
            name: "ControlPlane",
            dependencies: ["DeployModel", "HostCommandModel", "DeployStore", "ArtifactStore"]
        ),
        // Evaluates the Prometheus and HTTP alarms deployments watch (AsyncHTTPClient), recording each evaluation.
        .target(
            name: "AlarmProbes",
            dependencies: [
                "ControlPlane", "DeployModel", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]),
        // Delivers the deliveries outbox (triggers, Publish) to HTTP(S) subscriptions: SNS's envelope, signed.
        .target(
            name: "TopicDelivery",
            dependencies: [
                "ControlPlane", "DeployModel", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The web dashboard's pages, rendered from the control plane's API calls; its sessions and assets.
        .target(name: "Dashboard", dependencies: ["ControlPlane", "DeployModel", "DeployStore"]),
        // The AWS wire formats: SigV4 signing and verification, the JSON 1.1 codec, the command protocol, S3 XML errors.
        .target(name: "AWSWire", dependencies: ["DeployModel", "HostCommandModel", .product(name: "Crypto", package: "swift-crypto")]),
        // `deployctl server`: the API (JSON 1.1), S3 routes and /metrics over HTTPS, every request SigV4-verified.
        .target(
            name: "DeployServer",
            dependencies: [
                "DeployModel", "HostCommandModel", "ControlPlane", "DeployStore", "ArtifactStore", "AWSWire", "TrafficControl", "AlarmProbes", "TopicDelivery", "Dashboard",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The remote side of the same protocols: CodeDeployAPI over JSON 1.1 and ArtifactStorage over S3, signed.
        .target(
            name: "DeployClient",
            dependencies: [
                "DeployModel", "HostCommandModel", "ArtifactStore", "AWSWire", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Thin ArgumentParser commands, input parsing and output formatting.
        .target(
            name: "DeployCLI",
            dependencies: [
                "DeployModel", "HostCommandModel", "ControlPlane", "DeployStore", "DeployStoreSQLite", "DeployStorePostgres", "AppSpec", "Bundles", "ArtifactStore",
                "Revisions", "Agent",
                "DeployServer", "DeployClient", "JMESPath", "TrafficControl", "AlarmProbes", "TopicDelivery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The aws CLI's --query language (issue 13): no maintained Swift JMESPath package is in the mirror.
        .target(name: "JMESPath", dependencies: ["DeployModel"]),
        .executableTarget(
            name: "deployctl", dependencies: ["DeployCLI"],
            // The shipped (release) binary exports no dynamic symbols (swiftc's static-stdlib link exports all of
            // them, so the loader looked up and kept resident megabytes of names nothing uses) and packs its
            // relative relocations (RELR, glibc >= 2.36; lld, since gold lacks it), so it stays position-independent
            // (ASLR) without a 3.5 MiB relocation table read at every start. Server RSS under load 55 -> 45 MiB
            // (BENCHMARKS.md). The functions that common commands run while starting are placed side by side
            // (Scripts/startup-order.txt, made by `make startup-order`), so a start faults in a few contiguous
            // megabytes of code rather than 64 KiB windows all over 100 MB: a trivial `deployctl local` 24.5 -> 18.5 MiB.
            // `make release` puts libstdc++.a alone in .build/static-libstdc++, searched before the system's directories:
            // the runtime's C++ library is linked in, so the loader no longer maps libstdc++.so (1.4 MiB resident) and
            // binds its thousands of symbols at every start (trivial `deployctl local`: -1.3 MiB, -1 ms).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-L", "\(Context.packageDirectory)/.build/static-libstdc++", "-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker",
                        "-z", "-Xlinker", "pack-relative-relocs",
                        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Scripts/startup-order.txt",
                        "-Xlinker", "--no-warn-symbol-ordering",
                    ],
                    .when(configuration: .release))
            ]),

        // Shared by the test targets that run the built binary.
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "DeployModelTests", dependencies: ["DeployModel"]),
        .testTarget(name: "JMESPathTests", dependencies: ["JMESPath", "DeployModel", "TestSupport"]),
        .testTarget(
            name: "DeployStoreTests",
            dependencies: [
                "DeployStore", "DeployStoreSQLite", "DeployStorePostgres", "DeployModel", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .testTarget(name: "ArtifactStoreTests", dependencies: ["ArtifactStore"]),
        .testTarget(name: "TopicDeliveryTests", dependencies: ["TopicDelivery", "ControlPlane", "DeployStore"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "ControlPlane", "DeployStore", "DeployModel"]),
        .testTarget(name: "AppSpecTests", dependencies: ["AppSpec", "HostCommandModel", "TestSupport"]),
        .testTarget(name: "BundlesTests", dependencies: ["Bundles"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "AppSpec", "Bundles", "DeployModel", "TestSupport"]),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "ControlPlane", "DeployModel", "DeployStore", "DeployStoreSQLite", "DeployStorePostgres", "HostCommandModel", "ArtifactStore",
                "Agent", "Bundles", "TestSupport",
            ]),
        .testTarget(name: "DeployCLITests", dependencies: ["DeployCLI", "DeployModel", "ControlPlane", "DeployClient", "DeployStoreSQLite"]),
        .testTarget(name: "DeployClientTests", dependencies: ["DeployClient", "AWSWire", "DeployModel", "HostCommandModel"]),
        .testTarget(name: "RevisionsTests", dependencies: ["Revisions", "AppSpec", "Bundles"]),
        .testTarget(name: "TrafficControlTests", dependencies: ["TrafficControl", "ControlPlane", "DeployStore"]),
        .testTarget(
            name: "AWSWireTests", dependencies: ["AWSWire", "ControlPlane", "DeployStore", "DeployModel"], exclude: ["botocore_sign.py"]),
        .testTarget(name: "EndToEndTests", dependencies: ["DeployModel", "TestSupport"]),
        .testTarget(
            name: "DeployServerTests",
            dependencies: [
                "DeployServer", "DeployClient", "ControlPlane", "DeployStore", "DeployStoreSQLite", "DeployModel", "ArtifactStore", "AWSWire",
                "TestSupport",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
