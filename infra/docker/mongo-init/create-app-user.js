// Runs once, when the MongoDB data volume is first initialised (docker-entrypoint-initdb.d), as
// the administrator. Creates the application's own user: readWrite on the application database
// only, so the pipeline never holds administrator credentials.
const appDb = process.env.MONGO_APP_DB || "darooghe";
const user = process.env.MONGO_APP_USER || "darooghe_app";
const password = process.env.MONGO_APP_PASSWORD;
if (!password) {
  throw new Error("MONGO_APP_PASSWORD is not set: cannot create the application user");
}
db.getSiblingDB(appDb).createUser({
  user: user,
  pwd: password,
  roles: [{ role: "readWrite", db: appDb }],
});
print(`created user ${user} with readWrite on ${appDb}`);
