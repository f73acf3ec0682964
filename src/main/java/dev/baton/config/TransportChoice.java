package dev.baton.config;

/** The transport named in the configuration. */
public enum TransportChoice {
    AUTO("auto"), IO_URING("io_uring"), EPOLL("epoll"), NIO("nio");

    private final String label;

    TransportChoice(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    public static TransportChoice of(String label) {
        for (TransportChoice t : values()) {
            if (t.label.equals(label)) {
                return t;
            }
        }
        return null;
    }
}
