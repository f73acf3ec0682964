package dev.baton.config;

import java.util.List;

/** The configuration is invalid: every problem, one `FILE:LINE: key: message` line each. */
public final class ConfigException extends Exception {
    private final List<String> errors;

    public ConfigException(List<String> errors) {
        super(errors.isEmpty() ? "invalid configuration" : errors.get(0)
                + (errors.size() > 1 ? " (and " + (errors.size() - 1) + " more)" : ""));
        this.errors = List.copyOf(errors);
    }

    public List<String> errors() {
        return errors;
    }
}
