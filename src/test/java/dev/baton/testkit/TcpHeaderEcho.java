package dev.baton.testkit;

import dev.baton.testkit.ProxyHeaders.Header;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A TCP backend behind a proxy that sends PROXY headers: reads one header per connection by hand,
 * records it, then echoes every byte after it (a second header would come back to the client).
 */
public final class TcpHeaderEcho implements AutoCloseable {
    /** A {@link Header}, or a String saying why a connection had none. */
    public final BlockingQueue<Object> headers = new LinkedBlockingQueue<>();
    public final EchoServer server;

    public TcpHeaderEcho() throws IOException {
        server = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            try {
                headers.add(ProxyHeaders.read(in));
            } catch (IOException e) {
                headers.add("no header: " + e);
                throw e;
            }
            OutputStream out = s.getOutputStream();
            in.transferTo(out);
            s.shutdownOutput();
        });
    }

    public int port() {
        return server.port();
    }

    /** The next connection's header (waits up to 20 s); fails if it had none. */
    public Header next() throws InterruptedException {
        Object h = headers.poll(20, TimeUnit.SECONDS);
        if (!(h instanceof Header header)) {
            throw new AssertionError(h == null ? "the backend got no connection with a header" : String.valueOf(h));
        }
        return header;
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
