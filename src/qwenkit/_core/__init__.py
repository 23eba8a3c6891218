"""The request pipeline shared by the SDK and the gateway."""
