package dev.baton.config;

/** How a proxy picks an upstream for a new connection or flow. */
public enum Balance {
    ROUND_ROBIN("round-robin"),
    LEAST_CONN("least-conn"),
    RANDOM_TWO("random-two"),
    SOURCE_HASH("source-hash");

    private final String label;

    Balance(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    public static Balance of(String label) {
        for (Balance b : values()) {
            if (b.label.equals(label)) {
                return b;
            }
        }
        return null;
    }
}
