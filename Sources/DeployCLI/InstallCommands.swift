import ArgumentParser
import Foundation

/// Where `deployctl install` puts a host's files, under a prefix (`/` on a real host, a folder in tests).
struct HostLayout {
    var prefix: String

    func path(_ absolute: String) -> String { prefix == "/" ? absolute : prefix + absolute }

    var configDirectory: String { path("/etc/codedeploy-agent/conf") }
    var onPremises: String { configDirectory + "/codedeploy.onpremises.yml" }
    var agentConfig: String { configDirectory + "/codedeployagent.yml" }
    var ca: String { configDirectory + "/deployctl-ca.pem" }
    /// Debian's system trust store input (`update-ca-certificates` adds it to /etc/ssl/certs).
    var systemCA: String { path("/usr/local/share/ca-certificates/deployctl-ca.crt") }
    var unit: String { path("/etc/systemd/system/deployctl-agent.service") }

    static let unitText = """
        # deployctl agent for this host, against deployctl server (written by `deployctl install`).
        [Unit]
        Description=deployctl agent (CodeDeploy command protocol)
        Documentation=man:deployctl-agent-run(1) man:deployctl-install(1)
        After=network-online.target
        Wants=network-online.target

        [Service]
        Type=simple
        ExecStart=/usr/local/bin/deployctl agent run --config /etc/codedeploy-agent/conf/codedeployagent.yml
        # SIGTERM goes to the agent alone (KillMode=process): it lets the running lifecycle event finish (bounded by its
        # scripts' timeouts, so up to an hour), and services that hooks started keep running across an agent restart.
        KillMode=process
        KillSignal=SIGTERM
        TimeoutStopSec=3600
        Restart=on-failure
        RestartSec=5
        # Hardening that hooks cannot notice. Hooks run as root (or their runas user) and may install files anywhere,
        # manage services, containers and kernel settings, so ProtectSystem, ProtectKernel*, PrivateTmp and
        # NoNewPrivileges (sudo in a hook) are deliberately not set.
        LockPersonality=yes
        RestrictRealtime=yes
        UMask=0022

        [Install]
        WantedBy=multi-user.target

        """
}

/// `deployctl install`: the host side of `deployctl register` (the aws CLI's `deploy install`).
struct InstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        _superCommandName: "deployctl",
        abstract: "Install this host's agent configuration from `deployctl register` and enable deployctl's agent (as aws deploy install does).",
        discussion: """
            Puts codedeploy.onpremises.yml (0600) and codedeployagent.yml where AWS's agent keeps them \
            (/etc/codedeploy-agent/conf/), with the server's CA beside them and in the system trust store \
            (/usr/local/share/ca-certificates, update-ca-certificates), writes the deployctl-agent systemd unit and \
            enables it. Either agent then works from the same files. --prefix installs under a folder instead of / \
            (nothing is enabled or trusted system-wide then). `deployctl uninstall` reverses it.

            Example:
              deployctl install --config-file web-1/codedeploy.onpremises.yml
            """)

    @Option(name: .customLong("config-file"), help: ArgumentHelp("The codedeploy.onpremises.yml deployctl register wrote.", valueName: "file"))
    var configFile: String

    @Option(
        name: .customLong("agent-config"),
        help: ArgumentHelp("Its codedeployagent.yml (default: the one beside --config-file).", valueName: "file"))
    var agentConfig: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("The server's CA (default: deployctl-ca.pem beside --config-file).", valueName: "file"))
    var caFile: String?

    @Option(name: .customLong("prefix"), help: ArgumentHelp("Install under this folder instead of / (tests, images).", valueName: "dir"))
    var prefix: String = "/"

    @Flag(name: .customLong("no-start"), help: "Write the unit but do not enable or start it.")
    var noStart = false

    func run() throws {
        let beside = (configFile as NSString).deletingLastPathComponent
        let folder = beside.isEmpty ? "." : beside
        let agentSource = agentConfig ?? folder + "/codedeployagent.yml"
        let caSource = caFile ?? folder + "/deployctl-ca.pem"
        let layout = HostLayout(prefix: prefix)
        func read(_ path: String, _ what: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIFailure.usage("cannot read \(what) \(path); give the files deployctl register wrote")
            }
            return data
        }
        let onPremises = try read(configFile, "--config-file")
        guard String(decoding: onPremises, as: UTF8.self).contains("iam_") else {
            throw CLIFailure.usage("\(configFile) is not a codedeploy.onpremises.yml (no iam_user_arn or iam_session_arn)")
        }
        let agent = try read(agentSource, "the agent configuration")
        let ca = FileManager.default.contents(atPath: caSource)
        do {
            try FileManager.default.createDirectory(atPath: layout.configDirectory, withIntermediateDirectories: true)
            try install(onPremises, at: layout.onPremises, mode: 0o600)
            try install(agent, at: layout.agentConfig, mode: 0o644)
            if let ca {
                try install(ca, at: layout.ca, mode: 0o644)
                try FileManager.default.createDirectory(
                    atPath: (layout.systemCA as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try install(ca, at: layout.systemCA, mode: 0o644)
            }
            try FileManager.default.createDirectory(atPath: (layout.unit as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try install(Data(HostLayout.unitText.utf8), at: layout.unit, mode: 0o644)
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure.other("cannot install under \(prefix): \(error.localizedDescription)")
        }
        var done = ["installed \(layout.onPremises)", "installed \(layout.agentConfig)", "installed \(layout.unit)"]
        if prefix == "/" {
            if ca != nil, FileManager.default.isExecutableFile(atPath: "/usr/sbin/update-ca-certificates") {
                _ = Self.runTool("/usr/sbin/update-ca-certificates", [])
                done.append("trusted the server's CA in the system store")
            }
            if !noStart, FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl") {
                _ = Self.runTool("/usr/bin/systemctl", ["daemon-reload"])
                let status = Self.runTool("/usr/bin/systemctl", ["enable", "--now", "deployctl-agent.service"])
                done.append(status == 0 ? "enabled and started deployctl-agent.service" : "systemctl could not enable deployctl-agent.service")
            }
        }
        try StandardStreams.out(done.joined(separator: "\n") + "\n")
    }

    func install(_ data: Data, at path: String, mode: mode_t) throws {
        try AtomicFile.write(data, to: path, mode: mode)
    }

    /// Runs a system tool, its output passed through; answers its exit status.
    static func runTool(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            return -1
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// `deployctl uninstall`: removes what `install` put on the host (the aws CLI's `deploy uninstall`).
struct UninstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall", _superCommandName: "deployctl",
        abstract: "Remove the agent configuration, CA and unit `deployctl install` put on this host.")

    @Option(name: .customLong("prefix"), help: ArgumentHelp("The folder given to install --prefix (default /).", valueName: "dir"))
    var prefix: String = "/"

    func run() throws {
        let layout = HostLayout(prefix: prefix)
        if prefix == "/", FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl") {
            _ = InstallCommand.runTool("/usr/bin/systemctl", ["disable", "--now", "deployctl-agent.service"])
        }
        var removed: [String] = []
        for path in [layout.unit, layout.onPremises, layout.agentConfig, layout.ca, layout.systemCA] where unlink(path) == 0 {
            removed.append("removed \(path)")
        }
        if prefix == "/", FileManager.default.isExecutableFile(atPath: "/usr/sbin/update-ca-certificates") {
            _ = InstallCommand.runTool("/usr/sbin/update-ca-certificates", ["--fresh"])
        }
        try StandardStreams.out((removed.isEmpty ? ["nothing to remove under \(prefix)"] : removed).joined(separator: "\n") + "\n")
    }
}

/// Files written whole or not at all: a new file (never through an existing symlink) with its mode, renamed into place.
enum AtomicFile {
    static func write(_ data: Data, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CLIFailure.other("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CLIFailure.other("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
