package dev.baton.socket;

/** A listen address could not be opened; the message is one line fit for the log. */
public final class ListenException extends Exception {
    public ListenException(String message) {
        super(message);
    }
}
