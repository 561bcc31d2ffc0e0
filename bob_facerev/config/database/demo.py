"""``-d facerev-demo`` / ``-d facerev-demo-attack``: the bundled demo faces (no configuration)."""

from bob_facerev.database.demo import demo_database

database = demo_database("verification")
database_attack = demo_database("attack")
