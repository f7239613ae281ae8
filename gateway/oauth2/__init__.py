"""OAuth2 sign-in to mail providers: presets, the authorization-code flow, token refresh and
the SASL XOAUTH2/OAUTHBEARER logins that use the tokens."""
