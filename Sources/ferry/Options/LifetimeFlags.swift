import ArgumentParser
import FerryCore

/// Servers that end by themselves (websockify's --idle-timeout, --timeout, --run-once) and session recording. Shown under "LIFETIME AND RECORDING" in `ferry --help`.
struct LifetimeFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Exit once no session has been open for this long (websockify's --idle-timeout).", valueName: "duration"))
    var exitWhenIdle: String?

    @Option(help: ArgumentHelp("Stop accepting connections this long after starting; exit when the last session ends (websockify's --timeout).", valueName: "duration"))
    var acceptFor: String?

    @Flag(help: "Stop accepting after the first WebSocket session and exit when it ends.")
    var runOnce = false

    @Option(help: ArgumentHelp("Record every session's payloads to PREFIX.1, PREFIX.2, ... in websockify's --record format. Holds what users type: protect the folder.", valueName: "prefix"))
    var record: String?

    func apply(to options: inout CommandLineOptions) {
        options.exitWhenIdle = self.exitWhenIdle
        options.acceptFor = self.acceptFor
        options.runOnce = self.runOnce
        options.record = self.record
    }
}
