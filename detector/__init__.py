"""streetwatch's video side, one room per step of DESIGN §2; ``cli`` and ``demo`` at the top tie them together.
May import: zones (never service); each room's ``__init__`` names the rooms below it that it may import."""
