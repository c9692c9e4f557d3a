import ArgumentParser

/// `--config` and `--check`. Shown under "CONFIGURATION FILE" in `ferry --help`; the file itself is
/// read before the command line is parsed (``ConfigLayers``), so these two only say what was asked.
public struct ConfigFileFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("A YAML (or JSON) file of options by their long names, e.g. 'buffer-size: 1MiB', with 'routes' and 'listeners' as lists. FERRY_* environment variables override it and flags override both. (also FERRY_CONFIG)", valueName: "file"))
    public var config: String?

    @Flag(help: "Check the configuration from the file, the environment and the flags; print it with where each option came from (secrets masked) and exit: 0 if it is valid, 2 if not.")
    public var check = false
}
