"""``ncb-relay demo``: the SkyManga case played by a coordinator and bureaus on a real relay."""
