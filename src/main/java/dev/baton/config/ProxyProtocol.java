package dev.baton.config;

/** Whether and how a proxy tells its upstreams the client's address (`proxy-protocol`). */
public enum ProxyProtocol {
    OFF("off"),
    /** The text form; TCP only. */
    V1("v1"),
    /** The binary form; TCP and UDP. */
    V2("v2");

    private final String label;

    ProxyProtocol(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    /** The value as written in the configuration, or null if it is none of them. */
    public static ProxyProtocol of(String text) {
        for (ProxyProtocol p : values()) {
            if (p.label.equals(text)) {
                return p;
            }
        }
        return null;
    }
}
