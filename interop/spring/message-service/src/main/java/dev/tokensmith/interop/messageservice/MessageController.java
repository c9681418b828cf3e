package dev.tokensmith.interop.messageservice;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.security.core.GrantedAuthority;
import org.springframework.security.oauth2.server.resource.authentication.JwtAuthenticationToken;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * The message, plus what Spring understood of the token that reached it, so a test can check what the exchange
 * produced (subject kept, audience message-service, scope message.read, any act claim) as Spring reads it.
 */
@RestController
public class MessageController {

    @GetMapping("/message")
    public Map<String, Object> message(JwtAuthenticationToken authentication) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("message", "Hello " + authentication.getName() + ", from the Spring message-service");
        body.put("sub", authentication.getToken().getSubject());
        body.put("aud", authentication.getToken().getAudience());
        body.put("authorities", authentication.getAuthorities().stream().map(GrantedAuthority::getAuthority).toList());
        body.put("typ", authentication.getToken().getHeaders().getOrDefault("typ", ""));
        Object act = authentication.getToken().getClaims().get("act");
        body.put("act", act == null ? Map.of() : act);
        return body;
    }
}
