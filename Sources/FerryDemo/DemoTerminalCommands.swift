import FerryCore

/// Ways to join the chat from a terminal, for the start-up text and the page. `nc` is not installed
/// everywhere, so `socat` and a Python one-liner are offered too.
public enum DemoTerminalCommands {
    /// The address a terminal on the same machine dials: a wildcard listen address is not one.
    static func dialHost(_ chat: ListenAddress) -> String {
        switch chat.host {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::": return "::1"
        default: return chat.host
        }
    }

    /// `nc`, `socat` and `python3` command lines, in that order.
    public static func commands(chat: ListenAddress) -> [String] {
        let host = Self.dialHost(chat)
        let port = chat.port
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return [
            "nc \(host) \(port)",
            "socat - TCP:\(bracketed):\(port)",
            // Two directions at once without threads' ceremony: a reader thread prints what arrives,
            // the main thread sends each line typed.
            "python3 -c 'import socket,sys,threading;s=socket.create_connection((\"\(host)\",\(port)));"
                + "threading.Thread(target=lambda:[print(l,end=\"\",flush=True) for l in s.makefile(encoding=\"utf-8\",errors=\"replace\")],daemon=True).start();"
                + "[s.sendall(l.encode()) for l in sys.stdin]'",
        ]
    }
}
