// A syntax error in the body: the header and the inputs and outputs still give the
// struct its API, so the code that uses it shows no errors of its own.
bp::network! {
    struct Net {
        input x: [4];
        let fc1 = linear(x, 3) +;
        output fc1;
    }
}

fn main() {
    let mut net = Net::new(0);
    let x = bp::Tensor::<f32>::zeros(&[2, 4]);
    if let Ok(y) = net.forward(&x) {
        let d = y.clone();
        let _ = net.backward(&d);
    }
}
