package dev.tokensmith.interop.authorizationserver;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Bean;
import org.springframework.security.core.userdetails.User;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.security.oauth2.server.authorization.OAuth2TokenType;
import org.springframework.security.oauth2.server.authorization.authentication.OAuth2TokenExchangeActor;
import org.springframework.security.oauth2.server.authorization.authentication.OAuth2TokenExchangeCompositeAuthenticationToken;
import org.springframework.security.oauth2.server.authorization.token.JwtEncodingContext;
import org.springframework.security.oauth2.server.authorization.token.OAuth2TokenCustomizer;
import org.springframework.security.provisioning.InMemoryUserDetailsManager;

/**
 * The article's authorization server: Spring Authorization Server as Spring Boot configures it, with the clients
 * from application.yml. Everything else (filter chains, OIDC, a generated RSA key) is Boot's auto-configuration,
 * except one token customizer for delegation (below).
 */
@SpringBootApplication
public class AuthorizationServerApplication {

    public static void main(String[] args) {
        SpringApplication.run(AuthorizationServerApplication.class, args);
    }

    // The article's user. Declared as a bean because Boot skips its spring.security.user default when the
    // authorization server contributes a JwtDecoder.
    @Bean
    UserDetailsService users() {
        return new InMemoryUserDetailsManager(
                User.withUsername("baeldung").password("{noop}password").roles("USER").build());
    }

    /**
     * RFC 8693 4.1: a token issued by delegation names its actor in {@code act}, the current actor outermost and
     * earlier ones nested inside. Spring Authorization Server accepts an {@code actor_token} (one it issued, and
     * the one {@code may_act} names when the subject token has that claim) and keeps the actors in the exchange's
     * principal, but writes no {@code act} claim itself: this writes it, from the actors' {@code iss} and
     * {@code sub}. Tokens issued without an actor are untouched.
     */
    @Bean
    OAuth2TokenCustomizer<JwtEncodingContext> actClaim() {
        return context -> {
            if (!OAuth2TokenType.ACCESS_TOKEN.equals(context.getTokenType())
                    || !(context.getPrincipal() instanceof OAuth2TokenExchangeCompositeAuthenticationToken composite)) {
                return;
            }
            List<OAuth2TokenExchangeActor> actors = composite.getActors(); // the current actor first
            Map<String, Object> act = null;
            for (int i = actors.size() - 1; i >= 0; i--) {
                Map<String, Object> claims = new LinkedHashMap<>();
                if (actors.get(i).getIssuer() != null) {
                    claims.put("iss", actors.get(i).getIssuer());
                }
                claims.put("sub", actors.get(i).getSubject());
                if (act != null) {
                    claims.put("act", act);
                }
                act = claims;
            }
            if (act != null) {
                context.getClaims().claim("act", act);
            }
        };
    }
}
