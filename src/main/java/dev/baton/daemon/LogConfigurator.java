package dev.baton.daemon;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.spi.ContextAwareBase;
import org.slf4j.Logger;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Applies the logging configuration baton ships (logback.xml: one line per event on stdout,
 * io.netty at WARN, the root at BATON_LOG_LEVEL or INFO) in code when the file the launcher names
 * is that file unchanged, and otherwise leaves it to logback, which reads the file as usual.
 * Same outcome; logback's XML configurator took 0.15-0.2 s of every start (docs/jvm.md).
 * Registered with logback as a service, so it runs before logback's own configurators.
 */
public final class LogConfigurator extends ContextAwareBase implements Configurator {
    /** The pattern of the shipped logback.xml (LogConfiguratorTest holds the two together). */
    static final String PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSS} %-5level [%thread] %logger{0}: %msg%n";

    @Override
    public ExecutionStatus configure(LoggerContext context) {
        try {
            Level root = shippedFileLevel();
            if (root == null) {
                return ExecutionStatus.INVOKE_NEXT_IF_ANY;
            }
            PatternLayoutEncoder encoder = new PatternLayoutEncoder();
            encoder.setContext(context);
            encoder.setPattern(PATTERN);
            encoder.start();
            ConsoleAppender<ILoggingEvent> stdout = new ConsoleAppender<>();
            stdout.setContext(context);
            stdout.setName("STDOUT");
            stdout.setEncoder(encoder);
            stdout.start();
            context.getLogger("io.netty").setLevel(Level.WARN);
            ch.qos.logback.classic.Logger r = context.getLogger(Logger.ROOT_LOGGER_NAME);
            r.setLevel(root);
            r.addAppender(stdout);
            return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
        } catch (RuntimeException | IOException e) {
            addWarn("baton's logging setup failed; logback reads the file itself", e);
            return ExecutionStatus.INVOKE_NEXT_IF_ANY;
        }
    }

    /**
     * The root level if logback.configurationFile names a file identical to the shipped one and
     * BATON_LOG_LEVEL (a system property, else the environment, as logback looks them up) is unset
     * or a level's name; otherwise null: logback's own configurators take over.
     */
    static Level shippedFileLevel() throws IOException {
        String file = System.getProperty("logback.configurationFile");
        if (file == null || !Files.isRegularFile(Path.of(file))) {
            return null;
        }
        byte[] shipped;
        try (InputStream in = LogConfigurator.class.getResourceAsStream("/logback.xml")) {
            if (in == null) {
                return null;
            }
            shipped = in.readAllBytes();
        }
        if (!Arrays.equals(shipped, Files.readAllBytes(Path.of(file)))) {
            return null;
        }
        String level = System.getProperty("BATON_LOG_LEVEL", System.getenv("BATON_LOG_LEVEL"));
        if (level == null) {
            return Level.INFO;
        }
        return Level.toLevel(level, null);
    }
}
