import ArgumentParser
import FerryCore

/// How `ferry connect` checks the relay's certificate, and its own for mutual TLS. Shown under "TLS".
public struct ConnectTLSFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("PEM CA trusted for the relay's certificate, besides the system store.", valueName: "file"))
    var ca: String?

    @Option(help: ArgumentHelp("Name sent in SNI and checked against the relay's certificate, instead of the URL's host.", valueName: "name"))
    var serverName: String?

    @Option(help: ArgumentHelp("PEM certificate chain for mutual TLS (the relay's --tls-client-ca); give --client-key too.", valueName: "file"))
    var clientCert: String?

    @Option(help: ArgumentHelp("PEM private key of --client-cert (unencrypted).", valueName: "file"))
    var clientKey: String?

    @Flag(help: "Do not verify the relay's certificate (warned on every start). Anyone on the path can then read and change the session.")
    var insecure = false

    func tlsOptions() throws(ConfigurationError) -> ConnectTLSOptions {
        var options = ConnectTLSOptions()
        if let path = self.ca { try FlagValue.checkReadable(path, flag: "--ca") }
        if let path = self.clientCert { try FlagValue.checkReadable(path, flag: "--client-cert") }
        if let path = self.clientKey { try FlagValue.checkReadable(path, flag: "--client-key") }
        if let name = self.serverName {
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
                throw ConfigurationError(flag: "--server-name", value: name, problem: "not a host name", expected: "e.g. relay.example.com")
            }
        }
        if self.insecure, self.ca != nil {
            throw ConfigurationError(flag: "--insecure", value: "", problem: "turns off the verification --ca is for", expected: "one of --ca FILE and --insecure")
        }
        options.caPath = self.ca
        options.serverName = self.serverName
        options.clientCertificatePath = self.clientCert
        options.clientKeyPath = self.clientKey
        options.insecure = self.insecure
        return options
    }
}
