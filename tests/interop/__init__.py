"""Interoperability with real third-party peers: Spring Boot, Spring Authorization Server, openid-client, Authlib."""
