import FerryCore

/// What `ferry demo` prints once everything listens: where to point a browser, how to join from a
/// terminal, and the plain relay command the demo amounts to.
public enum DemoBanner {
    public static func text(listen: ListenAddress, chat: ListenAddress) -> String {
        let commands = DemoTerminalCommands.commands(chat: chat)
        let alternatives = commands.dropFirst().map { "                    or:  \($0)\n" }.joined()
        return """
            Ferry demo is running.
              Open  http://\(listen)/  in a browser (open it twice to chat with yourself).
              Join from a terminal:  \(commands[0])
            \(alternatives)  Your first line is your name; /who lists who is here, /quit leaves.
              The relay alone is:  ferry --listen \(listen) --route /chat=\(chat)
            Press Ctrl-C to stop.

            """
    }
}
