package dev.baton.config;

/** The transport protocol a proxy relays. */
public enum Protocol {
    TCP, UDP;

    public String label() {
        return name().toLowerCase();
    }
}
