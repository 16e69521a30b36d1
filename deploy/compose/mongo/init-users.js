// docker-compose.yml mounts this in /docker-entrypoint-initdb.d: the mongo image runs it once,
// when the data volume is empty, as the root user (MONGO_INITDB_ROOT_USERNAME).
// Each service gets a user in `admin` (authSource=admin) that may read and write its own
// database only (NQT_DB_PREFIX "nqt": nqt_ingest, nqt_programs, ...), as no service reads
// another's. A password changed in .env later is not applied here: use db.changeUserPassword
// as root, or start from an empty volume (docker compose down -v).
const admin = db.getSiblingDB("admin");
for (const service of ["ingest", "programs", "reports", "notify"]) {
  const password = process.env[`MONGO_${service.toUpperCase()}_PASSWORD`];
  if (!password) throw new Error(`MONGO_${service.toUpperCase()}_PASSWORD is not set (see .env.example)`);
  admin.createUser({user: `nqt-${service}`, pwd: password, roles: [{role: "readWrite", db: `nqt_${service}`}]});
}
// `nqt replay` (docker compose run --rm -e NQT_MONGO_URL=... tools nqt replay): reads the live
// databases and rebuilds into replay_nqt_* beside them (or into a lost one, --into-live).
const replayPassword = process.env.MONGO_REPLAY_PASSWORD;
if (!replayPassword) throw new Error("MONGO_REPLAY_PASSWORD is not set (see .env.example)");
admin.createUser({user: "nqt-replay", pwd: replayPassword, roles: ["ingest", "programs", "reports", "notify"].flatMap(
  (service) => [{role: "readWrite", db: `nqt_${service}`}, {role: "readWrite", db: `replay_nqt_${service}`}])});
